"""Decoded cache: reused without opening images, rebuilt when a file changes, safe under concurrent builds."""

import json
import multiprocessing
import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import PIL.Image
import pydicom
import pytest
from data_writers import gradient_image, write_covid_radiography, write_png

from heatlens.data import DataError, build_datamodule
from heatlens.data import cache as cache_module
from heatlens.data.cache import ensure_cache
from heatlens.data.decode import DecodeOptions
from heatlens.data.folders import list_covid_radiography

AT_32 = DecodeOptions(32, 1)


def _config(root: Path) -> dict:
    return {"name": "covid_radiography", "root": str(root), "image_size": 32, "batch_size": 4, "augment": {},
            "split": [0.5, 0.25, 0.25]}


def _all_batches(dm) -> list[dict]:
    return [b for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()) for b in loader]


def test_second_pass_opens_no_image_file(tmp_path: Path, monkeypatch):
    root = write_covid_radiography(tmp_path / "db", {"COVID": 4, "Normal": 4})
    first = build_datamodule(_config(root))
    first.prepare_data()
    first.setup()
    expected = [b["image"] for b in _all_batches(first)[1:]]

    def refuse(*args, **kwargs):
        raise AssertionError("an image file was opened although the decoded cache exists")

    for owner, name in ((cv2, "imdecode"), (cv2, "imread"), (np, "fromfile"), (pydicom, "dcmread"),
                        (h5py, "File"), (PIL.Image, "open")):
        monkeypatch.setattr(owner, name, refuse)
    second = build_datamodule(_config(root))
    second.prepare_data()
    second.setup()
    batches = _all_batches(second)
    assert sum(len(b["label"]) for b in batches) == 8
    assert all(np.array_equal(a, b["image"]) for a, b in zip(expected, batches[1:]))  # eval batches identical


def test_changed_file_builds_a_new_cache(tmp_path: Path):
    root = write_covid_radiography(tmp_path / "db", {"COVID": 3, "Normal": 3})
    listing = list_covid_radiography(root, {"lung": "masks"})
    before = ensure_cache(listing.samples, ["lung"], AT_32, "error", tmp_path / "cache")
    target = root / "COVID" / "images" / "COVID-2.png"
    write_png(target, np.full((40, 40), 200, np.uint8))
    os.utime(target, ns=(1, 1))  # a different mtime even on coarse clocks
    after = ensure_cache(listing.samples, ["lung"], AT_32, "error", tmp_path / "cache")
    assert after.folder != before.folder
    row = after.ids.index("COVID/images/COVID-2.png")
    assert (after.images()[row] == 200).all() and not (before.images()[row] == 200).all()
    assert ensure_cache(listing.samples, ["lung"], AT_32, "error", tmp_path / "cache").folder == after.folder


def _build_in_child(root: str, cache_root: str, marker_dir: str, barrier) -> None:
    original = cache_module._build

    def recording_build(folder, *args):
        Path(marker_dir, f"built-by-{os.getpid()}").touch()
        original(folder, *args)

    cache_module._build = recording_build
    listing = list_covid_radiography(Path(root), {"lung": "masks"})
    barrier.wait()
    info = ensure_cache(listing.samples, ["lung"], AT_32, "error", Path(cache_root))
    np.save(Path(marker_dir, f"images-{os.getpid()}.npy"), np.asarray(info.images()))


def test_two_processes_building_the_same_cache_at_once(tmp_path: Path):
    root = write_covid_radiography(tmp_path / "db", {"COVID": 20, "Normal": 20})
    markers = tmp_path / "markers"
    markers.mkdir()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_build_in_child, args=(str(root), str(tmp_path / "cache"), str(markers), barrier))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert len(list(markers.glob("built-by-*"))) == 1  # one built, the other waited and reused it
    seen = [np.load(p) for p in markers.glob("images-*.npy")]
    assert len(seen) == 2 and np.array_equal(seen[0], seen[1])
    finals = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert len(finals) == 1 and not finals[0].name.startswith(".")
    listing = list_covid_radiography(root, {"lung": "masks"})
    reference = cv2.resize(gradient_image(40, seed=1), (32, 32), interpolation=cv2.INTER_AREA)
    row = json.loads((finals[0] / "meta.json").read_text())["ids"].index(listing.samples[0].id)
    assert np.array_equal(seen[0][row, ..., 0], reference)


def test_interrupted_build_leaves_no_cache_and_is_redone(tmp_path: Path, monkeypatch):
    root = write_covid_radiography(tmp_path / "db", {"COVID": 3, "Normal": 3})
    listing = list_covid_radiography(root, {"lung": "masks"})
    calls = []
    real_decode = cache_module.decode_sample

    def crash_on_fourth(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # e.g. the job was killed mid-build
        return real_decode(*args)

    monkeypatch.setattr(cache_module, "decode_sample", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):  # one worker: decoding runs in this process, where the patch is
        ensure_cache(listing.samples, ["lung"], AT_32, "error", tmp_path / "cache", workers=1)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []
    # A crashed builder's temporary folder (process killed, no cleanup) is never mistaken for a cache.
    key = cache_module.cache_key(listing.samples, ["lung"], AT_32)
    (tmp_path / "cache" / f".{key}.tmp-deadbeef").mkdir()
    monkeypatch.setattr(cache_module, "decode_sample", real_decode)
    info = ensure_cache(listing.samples, ["lung"], AT_32, "error", tmp_path / "cache")
    assert info.folder.name == key and len(info.ids) == 6
    assert not list((tmp_path / "cache").glob(".*.tmp-*"))


def test_skip_bad_images_lists_them_and_goes_on(tmp_path: Path, caplog):
    root = write_covid_radiography(tmp_path / "db", {"COVID": 4, "Normal": 4})
    bad = root / "Normal" / "images" / "Normal-3.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    dm = build_datamodule({**_config(root), "on_bad_image": "skip"})
    dm.setup()
    assert [s["file"] for s in dm.skipped] == [str(bad)]
    assert "Normal-3.png" in caplog.text and "Skipped 1 bad image" in caplog.text
    assert sum(len(ids) for ids in dm.split_ids.values()) == 7
    assert "Normal/images/Normal-3.png" not in sum(dm.split_ids.values(), [])
    strict = build_datamodule(_config(root))  # same cache, but bad images are errors here
    with pytest.raises(DataError, match="Normal-3.png"):
        strict.setup()


def test_two_worker_processes_build_the_same_cache_as_one(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(cache_module, "_CHUNK", 4)  # 17 samples: 5 chunks, shared by both workers
    root = write_covid_radiography(tmp_path / "db", {"COVID": 8, "Normal": 9})
    bad = root / "COVID" / "images" / "COVID-5.png"
    bad.write_bytes(b"broken")
    listing = list_covid_radiography(root, {"lung": "masks"})
    one = ensure_cache(listing.samples, ["lung"], AT_32, "skip", tmp_path / "one", workers=1)
    two = ensure_cache(listing.samples, ["lung"], AT_32, "skip", tmp_path / "two", workers=2)
    assert one.ids == two.ids and len(one.ids) == 16 and "COVID/images/COVID-5.png" not in one.ids
    assert one.skipped == two.skipped and [s["file"] for s in one.skipped] == [str(bad)]
    assert np.array_equal(one.images(), two.images()) and np.array_equal(one.masks(), two.masks())
    row = one.ids.index("COVID/images/COVID-6.png")  # after the dropped row: rows moved up, not shifted
    reference = cv2.resize(gradient_image(40, seed=6), (32, 32), interpolation=cv2.INTER_AREA)
    assert np.array_equal(two.images()[row, ..., 0], reference)
    expected_mask = np.zeros((32, 32), np.uint8)
    expected_mask[:16, :8] = 1
    assert all(np.array_equal(m[0], expected_mask) for m in two.masks())


def test_bad_build_workers_value_names_the_key(tmp_path: Path):
    with pytest.raises(DataError, match=r"data\.build_workers=0: expected an integer >= 1 or null"):
        build_datamodule({**_config(tmp_path), "build_workers": 0})
