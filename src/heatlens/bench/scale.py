"""Scale benchmark (opt-in: `python -m heatlens.bench --only scale`, about 30 minutes on 2 cores).

The phantom at the COVID-19 Radiography Database's size and layout (21,165 images of 299 px, lung and
lesion masks of 256 px), trained at 224 px with simple_cnn and explained on its whole test split with
the seed protocol `covid_aopc`'s AOPC settings (34 px regions, N(0, 0.1) noise, correct images
only); then the same at 2,000 images, so each cost's growth shows. Every phase runs in a subprocess
with its own HEATLENS_CACHE and MLflow store under one temporary folder, deleted afterwards:

1. `python -m heatlens.bench.scale_prepare`: phantom generation, then the decode-cache build
   (img/s, peak memory); at the small size also the cache build of its images with one process vs
   two, alternately (`ratio`: the two-process speed-up, best of each).
2. `heatlens-train` (= `python train.py`): one training epoch (img/s, share of the time spent
   waiting for data, from `PhaseMarks`), validation, test and the post-fit explanations of the
   whole test split, AOPC included (time per explainer from the run's `time/<step>_s`), predictions
   and logging.

Reductions that keep the 2-core run near 30 minutes (also in the result's `setting`): simple_cnn of
width 4 instead of 16 and one epoch. Every number is measured.
Memory: peak per phase of the whole process tree, file-backed pages left out (see `scale_probe`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from heatlens.bench.common import BenchResult
from heatlens.bench.scale_probe import MARKS_ENV, TreeMemory, first_mark, read_marks
from heatlens.tracking import RunHandle

# One download bar per artifact read back would clutter the bench's output.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass(frozen=True)
class ScaleSetting:
    sizes: tuple[int, int]  # (small, large) numbers of images
    overrides: tuple[str, ...]  # training overrides shared by both sizes
    compare: tuple[int, int]  # cache build 1 vs 2 processes: images, rounds
    free_gib: float  # disk space the temporary folder needs
    interval: float  # memory sampling period, s
    summary: str


def _overrides(source: int, masks: int, size: int, width: int, region: int) -> tuple[str, ...]:
    return (
        "data=phantom", f"data.source_size={source}", f"data.mask_size={masks}", f"data.image_size={size}",
        "data.resize=stretch", "data.num_workers=2", "backbone=simple_cnn", f"backbone.width={width}",
        "trainer.max_epochs=1", "explain=default", "explain.max_images=null",
        f"explain.aopc.region_size={region}", "explain.aopc.perturbation=gaussian_noise", "explain.aopc.sigma=0.1",
        "explain.aopc.correct_only=true", "explain.aopc.steps=null", "logger.experiment_name=scale",
    )


SETTINGS = {
    False: ScaleSetting(
        sizes=(2000, 21165), overrides=_overrides(299, 256, 224, 4, 34), compare=(2000, 3),
        free_gib=12.0, interval=0.25,
        summary=("phantom 299 px, masks 256 px -> 224 px, 1 channel, batch 32, 2 loader workers; simple_cnn width 4 "
                 "(not 16), 1 epoch; explain=default on the whole test split, AOPC with 34 px regions, "
                 "N(0, 0.1), correct images only, full curves; CPU"),
    ),
    True: ScaleSetting(
        sizes=(48, 96), overrides=(*_overrides(64, 48, 32, 2, 8), "logger.figures=false"), compare=(48, 1),
        free_gib=0.5, interval=0.1,
        summary=("--quick: 48 and 96 phantom images of 64 px -> 32 px, simple_cnn width 2, logger.figures=false "
                 "(a smoke test: its numbers are not results)"),
    ),
}


@dataclass
class Tracked:
    """One measured subprocess: its phase marks, memory samples and wall-clock span."""

    marks: list[dict]
    memory: TreeMemory
    start: float
    end: float

    def at(self, name: str) -> float:
        found = first_mark(self.marks, name)
        if found is None:
            raise RuntimeError(f"phase mark {name!r} missing: {[m['mark'] for m in self.marks]}")
        return found["t"]

    def phase(self, start: str | None, end: str | None) -> dict:
        """Seconds and memory peak between two marks (None: the process's start / end)."""
        begin = self.start if start is None else self.at(start)
        finish = self.end if end is None else self.at(end)
        return {"s": round(finish - begin, 2), **self.memory.peak(begin, finish)}


def _tracked(command: list[str], name: str, folder: Path, env: dict[str, str], interval: float) -> Tracked:
    marks, log = folder / f"{name}.marks.jsonl", folder / f"{name}.log"
    start = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=folder, env={**env, MARKS_ENV: str(marks)}, stdout=out,
                                   stderr=subprocess.STDOUT)
        with TreeMemory(process.pid, interval) as memory:
            code = process.wait()
    if code != 0:
        raise RuntimeError(f"{name} failed ({' '.join(command)}):\n{log.read_text()[-4000:]}")
    return Tracked(read_marks(marks), memory, start, time.monotonic())


def _script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _measure_size(images: int, setting: ScaleSetting, folder: Path, env: dict[str, str], compare: bool) -> dict:
    data = [f"data.num_images={images}", *setting.overrides]
    compare_args = ["--compare", *map(str, setting.compare)] if compare else []
    prepare = _tracked([sys.executable, "-m", "heatlens.bench.scale_prepare", *compare_args, *data],
                       f"prepare-{images}", folder, env, setting.interval)
    train = _tracked([_script("heatlens-train"), *data, f"hydra.run.dir={folder / f'run-{images}'}",
                      "+callbacks.scale_marks._target_=heatlens.bench.scale_probe.PhaseMarks"],
                     f"train-{images}", folder, env, setting.interval)
    generated, cached = first_mark(prepare.marks, "generate_end"), first_mark(prepare.marks, "cache_end")
    epoch, tested = first_mark(train.marks, "validation_start"), first_mark(train.marks, "test_start")
    run = RunHandle(env["MLFLOW_TRACKING_URI"], first_mark(train.marks, "fit_start")["run_id"])
    metrics = run.client.get_run(run.run_id).data.metrics
    train_s = epoch["step_s"] + epoch["wait_s"] + epoch["first_wait_s"]
    phases = {
        "generate": prepare.phase("generate_start", "generate_end"),
        "cache": {**prepare.phase("cache_start", "cache_built"), "bytes": cached["bytes"]},
        "job_setup": train.phase(None, "train_epoch_start"),
        "train_epoch": {**train.phase("train_epoch_start", "validation_start"), "images": epoch["images"],
                        "batches": epoch["batches"], "first_wait_s": round(epoch["first_wait_s"], 2),
                        "data_wait_share": round((epoch["wait_s"] + epoch["first_wait_s"]) / train_s, 4),
                        "img_s": round(epoch["images"] / train_s, 1)},
        "validation": train.phase("validation_start", "validation_end"),
        "test": train.phase("test_start", "explain_start"),
        "explain": {**train.phase("explain_start", "predict_start"),
                    "steps_s": {k.removeprefix("time/").removesuffix("_s"): round(v, 2)
                                for k, v in metrics.items() if k.startswith("time/")}},
        "predict_and_log": train.phase("predict_start", None),
    }
    phases["generate"]["img_s"] = round(generated["images"] / phases["generate"]["s"], 1)
    phases["cache"]["img_s"] = round(cached["images"] / phases["cache"]["s"], 1)
    result = {
        "images": images, "test_images": tested["images"], "test_correct": round(metrics["test/acc"] * tested["images"]),
        "test_acc": round(metrics["test/acc"], 4), "run_id": run.run_id, "phases": phases,
        "peak": {"anon_mib": max(prepare.memory.peak()["anon_mib"], train.memory.peak()["anon_mib"]),
                 "pss_mib": max(prepare.memory.peak()["pss_mib"], train.memory.peak()["pss_mib"])},
        "wall_s": round(prepare.end - prepare.start + train.end - train.start, 1),
    }
    compared = first_mark(prepare.marks, "compare")
    if compared:
        result["compare"] = {"images": compared["images"], "seconds_1": [round(s, 3) for s in compared["seconds_1"]],
                             "seconds_2": [round(s, 3) for s in compared["seconds_2"]]}
    return result


def _growth(small: dict, large: dict) -> dict:
    """Large / small for every phase's time and memory peak, beside the ratio of image counts."""
    out = {"images": round(large["images"] / small["images"], 3)}
    for name, phase in large["phases"].items():
        before = small["phases"][name]
        out[name] = {key: round(phase[key] / before[key], 3) if phase.get(key) and before.get(key) else None
                     for key in ("s", "anon_mib", "pss_mib")}
    out["peak"] = {key: round(large["peak"][key] / small["peak"][key], 3) for key in ("anon_mib", "pss_mib")}
    return out


def _print_table(details: dict) -> None:
    small, large = (details["sizes"][str(n)] for n in details["images"])
    table = Table(title=f"scale: {small['images']} vs {large['images']} images (peak memory: PSS, MiB)")
    for column in ("phase", *(f"{n} s" for n in details["images"]), "time x", *(f"{n} MiB" for n in details["images"]),
                   "memory x"):
        table.add_column(column)
    for name, phase in large["phases"].items():
        before = small["phases"][name]
        grew = details["growth"][name]
        table.add_row(name, f"{before['s']:.1f}", f"{phase['s']:.1f}", f"{grew['s'] or 0:.2f}",
                      f"{before['pss_mib'] or 0:.0f}", f"{phase['pss_mib'] or 0:.0f}", f"{grew['pss_mib'] or 0:.2f}")
    for step in large["phases"]["explain"]["steps_s"]:
        before, after = small["phases"]["explain"]["steps_s"][step], large["phases"]["explain"]["steps_s"][step]
        table.add_row(f"  explain: {step}", f"{before:.1f}", f"{after:.1f}", f"{after / before:.2f}", "", "", "")
    Console(width=160).print(table)


def run(quick: bool) -> list[BenchResult]:
    setting = SETTINGS[quick]
    scratch = Path(tempfile.gettempdir())
    free = shutil.disk_usage(scratch).free / 2**30
    if free < setting.free_gib:
        raise RuntimeError(f"scale bench: {scratch} has {free:.1f} GiB free, needs {setting.free_gib} GiB")
    started, load_before = time.monotonic(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="heatlens-scale-", dir=scratch) as tmp:
        folder = Path(tmp)
        env = {**os.environ, "HEATLENS_CACHE": str(folder / "cache"), "HEATLENS_HOME": str(folder),
               "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"}
        (folder / "mlruns").mkdir()
        small_n, large_n = setting.sizes
        small = _measure_size(small_n, setting, folder, env, compare=True)
        large = _measure_size(large_n, setting, folder, env, compare=False)
    best_1, best_2 = min(small["compare"]["seconds_1"]), min(small["compare"]["seconds_2"])
    speedup = best_1 / best_2
    growth = _growth(small, large)
    details = {
        "images": [small_n, large_n], "sizes": {str(small_n): small, str(large_n): large}, "growth": growth,
        "cache_build_speedup_2_vs_1": round(speedup, 3),
        "goals": {"peak_pss_under_4gb": large["peak"]["pss_mib"] < 4096,
                  "peak_anon_under_4gb": large["peak"]["anon_mib"] < 4096,
                  "peak_ratio_under_1_5": growth["peak"]["pss_mib"] < 1.5,
                  "cache_build_2_cores_1_5x": speedup >= 1.5},
        "machine": {"cores": os.cpu_count(), "load_1min_before": round(load_before, 2),
                    "load_1min_after": round(os.getloadavg()[0], 2)},
        "wall_s": round(time.monotonic() - started, 1), "setting": setting.summary,
        "memory": "peak over the process tree: pss = sum of Pss_Anon + Pss_Shmem (smaps_rollup), anon = sum "
                  "of RssAnon + RssShmem (status; counts pages shared copy-on-write by forked workers once per "
                  "process); file-backed pages (the decode cache's memory map, PNGs, libraries) left out",
    }
    _print_table(details)
    return [BenchResult(
        key="scale",
        ratio=speedup,
        ours=(f"{large_n} images: peak {large['peak']['pss_mib']:.0f} MiB (PSS), cache build {speedup:.2f}x "
              f"faster with 2 processes than 1 ({small['compare']['images']} images)"),
        reference=f"{small_n} images: peak {small['peak']['pss_mib']:.0f} MiB; peak ratio {growth['peak']['pss_mib']:.2f}",
        setting=f"{setting.summary}; {os.cpu_count()} cores, load {load_before:.1f}",
        details=details,
    )]
