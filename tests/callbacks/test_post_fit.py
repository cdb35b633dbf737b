"""PostFitExplanations in a real `trainer.test`: one sample for every step, every class of a class-ordered
test set, the same images in every run, one log, and its progress bars inside Lightning's Rich display."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
from callbacks_helpers import ClassOrderedImages, ToyModule
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import MLFlowLogger
from mlflow.tracking import MlflowClient
from stores import sqlite_store
from torch.utils.data import DataLoader

from heatlens.callbacks import ExplanationCallback, Findings, GradCamCallback, HeatmapStatsCallback, PostFitExplanations
from heatlens.explain.images import thumbnails

pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(ExplanationCallback):
    """A step that keeps the sample it was given and reports one metric."""

    name = "recorder"

    def __init__(self) -> None:
        self.samples = []

    def explain(self, sample):
        self.samples.append(sample)
        return Findings(metrics={"recorded": float(len(sample.positions))}, documents={"reports/seen.json": {
            "ids": sample.ids_of(sample.positions).tolist()}})


def _test(tmp_path: Path, seed: int, steps: list, callbacks: tuple = (), progress: bool = False) -> MlflowClient:
    logger = MLFlowLogger(experiment_name="post_fit", tracking_uri=sqlite_store(tmp_path),
                          artifact_location=(tmp_path / "artifacts").as_uri())
    trainer = L.Trainer(accelerator="cpu", logger=logger, callbacks=[*callbacks, PostFitExplanations(steps, 4)],
                        enable_progress_bar=progress, enable_model_summary=False)
    trainer.test(ToyModule(seed), dataloaders=DataLoader(ClassOrderedImages((12, 6, 2)), batch_size=4))
    return logger.run_id


def _npz(client: MlflowClient, run_id: str, path: str, tmp_path: Path) -> dict[str, np.ndarray]:
    with np.load(client.download_artifacts(run_id, path, str(tmp_path))) as arrays:
        return {key: arrays[key] for key in arrays.files}


def test_every_step_gets_the_same_sample_of_every_class_in_every_run(tmp_path: Path) -> None:
    first, second = Recorder(), Recorder()
    run_a = _test(tmp_path, 0, [first, GradCamCallback(samples_per_group=1), HeatmapStatsCallback(), second])
    run_b = _test(tmp_path, 1, [GradCamCallback(samples_per_group=1)])
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (a_sample,), (b_sample,) = first.samples, second.samples
    assert a_sample is b_sample  # built once per test pass, handed to every step

    one, other = (_npz(client, run, "explain/gradcam.npz", tmp_path / run) for run in (run_a, run_b))
    # 4 of 20 images listed class by class: every class, and the same images for another model.
    assert sorted(set(one["labels"].tolist())) == [0, 1, 2]
    assert one["ids"].tolist() == other["ids"].tolist() == a_sample.ids_of(a_sample.positions).tolist()
    assert not np.allclose(one["heatmaps"], other["heatmaps"])
    dataset = ClassOrderedImages((12, 6, 2))
    images = dataset.images[one["index"]]
    shown = (images - images.amin(dim=(1, 2, 3), keepdim=True)) / (
        images.amax(dim=(1, 2, 3), keepdim=True) - images.amin(dim=(1, 2, 3), keepdim=True) + 1e-8)
    np.testing.assert_array_equal(one["thumbnails"], thumbnails(shown))

    run = client.get_run(run_a)
    metrics = run.data.metrics
    assert metrics["recorded"] == 4.0
    # Timings logged once, by the pass, for every step; the shared Grad-CAM pass under gradcam only.
    assert {"time/recorder_s", "time/gradcam_s", "time/heatmap_stats_s"} <= set(metrics)
    artifacts = {a.path for folder in ("figures/gradcam", "figures/heatmaps", "reports")
                 for a in client.list_artifacts(run_a, folder)}
    assert {"figures/gradcam/class_0.png", "figures/heatmaps/average_grid.png", "reports/seen.json"} <= artifacts


class HostProbe(ExplanationCallback):
    """Records the tasks of Lightning's Rich display while a bar of the sample is open, and after."""

    name = "probe"

    def __init__(self, bar: RichProgressBar | None = None) -> None:
        self.bar = bar
        self.inside: list[str] = []
        self.after: list[str] = []

    def tasks(self) -> list[str]:
        return [task.description for task in self.bar.progress.tasks] if self.bar is not None else []

    def explain(self, sample):
        with sample.progress(3, "explain: probe") as advance:
            advance(1)
            self.inside = self.tasks()
        self.after = self.tasks()
        return None


def test_bars_join_lightnings_rich_display_and_stay_off_without_a_progress_bar(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []
    monkeypatch.setattr("heatlens.progress.Progress.__enter__", lambda self: opened.append(self) or self)
    bar = RichProgressBar()
    probe = HostProbe(bar)
    _test(tmp_path, 0, [probe], callbacks=(bar,), progress=True)
    assert "explain: probe" in probe.inside and "explain: probe" not in probe.after
    assert not opened  # no display of its own beside Lightning's

    # No progress bar callback: no bar at all, for the probe or the Grad-CAM pass.
    _test(tmp_path, 0, [HostProbe(), GradCamCallback()], progress=False)
    assert not opened
