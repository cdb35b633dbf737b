"""`summary.png` of a run: the confusion matrix of its test predictions, its mean perturbation curves,
its headline numbers and one overlay per class over the stored thumbnails."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix

from heatlens.plots.summary import Overlay, summary_figure
from heatlens.report.summary import run_summary_figure

CLASSES = ["COVID", "Normal", "Viral Pneumonia"]


def logged_files(seed: int = 0, thumbnails: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """npz files as the callbacks and tracking.reports write them (names and shapes)."""
    rng = np.random.default_rng(seed)
    n = 30
    ids = np.array([f"{CLASSES[i % 3]}/images/{CLASSES[i % 3]}-{i}.png" for i in range(n)])
    labels = np.arange(n) % 3
    probs = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    probs[np.arange(n) % 4 != 0, :] = np.eye(3)[labels[np.arange(n) % 4 != 0]] * 0.8 + 0.2 / 3
    explained = np.arange(0, n, 2)
    gradcam = {"ids": ids[explained], "labels": labels[explained], "predictions": probs[explained].argmax(1),
               "probabilities": probs[explained], "heatmaps": rng.normal(size=(len(explained), 3, 4, 4)).astype(np.float16),
               "class_names": np.array(CLASSES)}
    if thumbnails:
        gradcam["thumbnails"] = rng.integers(0, 255, size=(len(explained), 16, 16), dtype=np.uint8)
    curves = {f"curves_{o}": np.clip(rng.random((len(explained), 5)).cumsum(1)[:, ::-1] / 5, 0, 1)
              for o in ("morf", "lerf", "random")}
    return {
        "test_predictions": {"ids": ids, "labels": labels, "probs": probs, "class_names": np.array(CLASSES)},
        "gradcam": gradcam,
        "aopc": {"ids": ids[explained], "labels": labels[explained], "predictions": probs[explained].argmax(1),
                 **curves},
    }


METRICS = {"test/acc": 0.97512, "test/recall_macro": 0.96849, "xai/aopc_morf": 0.7311,
           "xai/loc/lesion/relevance_mass_accuracy": 0.1164, "xai/loc/lesion/uniform_relevance_mass_accuracy": 0.0331}


def test_summary_holds_the_test_confusion_matrix_curves_headline_and_one_overlay_per_class() -> None:
    files = logged_files()
    figure = run_summary_figure(files, METRICS, title="run-1 (simple_cnn, phantom)")
    confusion_ax = next(ax for ax in figure.axes if ax.get_title() == "Test confusion matrix")
    truth = files["test_predictions"]
    expected = confusion_matrix(truth["labels"], truth["probs"].argmax(1), normalize="true")
    np.testing.assert_allclose(confusion_ax.images[0].get_array(), expected)
    curves_ax = next(ax for ax in figure.axes if ax.get_title().startswith("Region perturbation"))
    morf = next(line for line in curves_ax.lines if line.get_label().startswith("MoRF"))
    np.testing.assert_allclose(morf.get_ydata(), files["aopc"]["curves_morf"].mean(axis=0))
    assert "AOPC 0.731" in morf.get_label()  # the logged value, not the recomputed one
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert "0.975" in texts and "0.968" in texts and "vs uniform map 0.033" in texts
    overlays = [ax for ax in figure.axes if ax.get_title().startswith("true ")]
    assert [ax.get_title().split("\n")[0] for ax in overlays] == [f"true {c}" for c in CLASSES]
    assert all(len(ax.images) == 2 for ax in overlays)  # the thumbnail, then the heatmap over it
    assert figure._suptitle.get_text() == "run-1 (simple_cnn, phantom)"


def test_summary_picks_a_correctly_classified_image_and_the_map_of_its_prediction() -> None:
    files = logged_files()
    gradcam = files["gradcam"]
    figure = run_summary_figure(files, METRICS)
    covid = next(ax for ax in figure.axes if ax.get_title().startswith("true COVID"))
    rows = np.flatnonzero((gradcam["labels"] == 0) & (gradcam["predictions"] == 0))
    assert f"correct: map of COVID\n{gradcam['ids'][rows[0]].rsplit('/', 1)[-1]}" in covid.get_title()
    np.testing.assert_allclose(covid.images[0].get_array(), gradcam["thumbnails"][rows[0]] / 255.0, rtol=1e-6)
    drawn = np.asarray(covid.images[1].get_array())  # the 4 x 4 map resized to the 16 x 16 thumbnail
    cell = np.unravel_index(np.argmax(gradcam["heatmaps"][rows[0], 0]), (4, 4))
    assert np.unravel_index(np.argmax(drawn), drawn.shape)[0] // 4 == cell[0]
    assert np.unravel_index(np.argmax(drawn), drawn.shape)[1] // 4 == cell[1]
    assert 0.0 <= drawn.min() and drawn.max() <= 1.0


def test_parts_without_data_are_left_out() -> None:
    files = logged_files(thumbnails=False)
    del files["aopc"]
    figure = run_summary_figure(files, {})
    titles = [ax.get_title() for ax in figure.axes]
    assert "Test confusion matrix" in titles
    assert not any(t.startswith("Region perturbation") or t == "Headline numbers" for t in titles)
    overlay = next(ax for ax in figure.axes if ax.get_title().startswith("true "))
    assert len(overlay.images) == 1  # no thumbnail stored: the heatmap alone
    only_overlays = summary_figure(CLASSES, overlays=[Overlay(None, np.eye(4), "one")])
    assert [ax.get_title() for ax in only_overlays.axes if ax.get_label() != "<colorbar>"] == ["one"]
