"""The `scale` bench: its memory probe on processes of known size, and a `--quick` run end to end."""

import json
import subprocess
import sys
import time

import pytest

from heatlens.bench.__main__ import main as bench_main
from heatlens.bench.scale_probe import TreeMemory

MIB = 2**20
# A child that holds `held` MiB: anonymous ("anon"), in a forked grandchild sharing it copy-on-write
# ("fork"), or a file of that size mapped and read ("mmap", page cache only); then sleeps.
CHILD = """
import mmap, os, sys, time
kind, held, path = sys.argv[1], int(sys.argv[2]) << 20, sys.argv[3]
if kind == "mmap":
    with open(path, "wb") as f:
        f.truncate(held)
    data = mmap.mmap(os.open(path, os.O_RDONLY), held, prot=mmap.PROT_READ)
    total = sum(data[i] for i in range(0, held, 4096))  # every page resident
else:
    data = bytearray(os.urandom(1 << 20)) * (held >> 20)  # every page written: resident anonymous memory
    if kind == "fork" and os.fork() == 0:
        time.sleep(30)
        os._exit(0)
print("ready", flush=True)
time.sleep(30)
"""


def _peak_while_holding(kind: str, held_mib: int, tmp_path) -> dict:
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(held_mib), str(tmp_path / "mapped")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"  # the fork's grandchild exists before this line
        # Counted samples, not a time window: a loaded machine only makes the wait longer.
        with TreeMemory(child.pid, interval=0.01, pss_every=1) as memory:
            deadline = time.monotonic() + 60
            while len(memory.samples) < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
        return memory.peak()
    finally:
        child.kill()
        child.wait()


def test_memory_probe_counts_anonymous_memory_not_the_page_cache_of_a_mapped_file(tmp_path):
    held = 256
    anonymous = _peak_while_holding("anon", held, tmp_path)
    mapped = _peak_while_holding("mmap", held, tmp_path)
    # A bare interpreter holds a few MiB: the anonymous child shows the 256 MiB, the mapped file's
    # resident pages (file-backed) show nowhere.
    assert held <= anonymous["anon_mib"] < held + 40 and held <= anonymous["pss_mib"] < held + 40
    assert mapped["anon_mib"] < 40 and mapped["pss_mib"] < 40
    assert anonymous["processes"] == mapped["processes"] == 1 and anonymous["samples"] >= 5


def test_memory_probe_follows_forked_children_and_pss_counts_shared_pages_once(tmp_path):
    held = 256
    forked = _peak_while_holding("fork", held, tmp_path)
    assert forked["processes"] == 2
    # RssAnon counts the copy-on-write pages in both processes, PSS splits them between the two.
    assert 2 * held <= forked["anon_mib"] < 2 * held + 80
    assert held <= forked["pss_mib"] < held + 40


@pytest.mark.slow
def test_quick_scale_bench_measures_every_phase_at_both_sizes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"cache_vs_png": 6.0, "commands": {"cache_vs_png": "earlier"}}))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the phases' subprocesses
    # The bench's own process is this one (its phases are subprocesses, as measured);
    # tests/bench/test_bench_cli.py runs `python -m heatlens.bench` itself.
    assert bench_main(["--only", "scale", "--quick", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["cache_vs_png"] == 6.0 and written["commands"]["cache_vs_png"] == "earlier"  # merged, kept
    assert written["commands"]["scale"] == f"python -m heatlens.bench --only scale --quick --out {out}"
    scale = written["scale"]
    small, large = (scale["sizes"][str(n)] for n in scale["images"])
    assert (small["images"], large["images"]) == (48, 96)
    for size in (small, large):
        phases = size["phases"]
        assert list(phases) == ["generate", "cache", "job_setup", "train_epoch", "validation", "test", "explain",
                                "predict_and_log"]
        assert all(p["s"] > 0 for p in phases.values())
        assert phases["generate"]["img_s"] == pytest.approx(size["images"] / phases["generate"]["s"], rel=0.01)
        assert phases["cache"]["bytes"] > size["images"] * 32 * 32  # images and masks at 32 px
        assert phases["train_epoch"]["images"] == phases["train_epoch"]["batches"] * 32  # full batches (drop_last)
        assert 0 < phases["train_epoch"]["data_wait_share"] < 1
        # Every default explainer, timed on the whole test split.
        assert {"gradcam", "aopc", "heatmap_stats", "embeddings", "localisation", "shortcut"} <= set(
            phases["explain"]["steps_s"])
        assert abs(size["test_images"] - size["images"] * 0.1) <= 4  # 10 % of each class, rounded
        assert 0 <= size["test_correct"] <= size["test_images"]
        # A training job imports torch and Lightning: hundreds of MiB, whatever the memory measure.
        assert 200 < size["peak"]["pss_mib"] <= size["peak"]["anon_mib"]
    growth = scale["growth"]
    assert growth["images"] == 2.0
    assert growth["explain"]["s"] == pytest.approx(large["phases"]["explain"]["s"] / small["phases"]["explain"]["s"],
                                                   abs=0.01)
    assert len(small["compare"]["seconds_1"]) == len(small["compare"]["seconds_2"]) == 1
    assert scale["ratio"] == pytest.approx(small["compare"]["seconds_1"][0] / small["compare"]["seconds_2"][0],
                                           rel=0.05)
    assert "scale" in capsys.readouterr().out
