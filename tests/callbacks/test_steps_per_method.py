"""Every heatmap step (AOPC, localisation, shortcut audit, heatmap statistics) on each method of
`explain.methods`: per-method names, Grad-CAM's values equal under both names, the default's names as
today, each method's maps computed once and shared, maps at the method's own resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from callbacks_helpers import ClassOrderedImages
from explain_models import TinyConvNet
from torch.utils.data import DataLoader

from heatlens import catalog
from heatlens.callbacks import (
    AopcCallback,
    ExplainedSample,
    Findings,
    HeatmapStatsCallback,
    LocalisationCallback,
    ShortcutCallback,
)
from heatlens.callbacks.base import method_name
from heatlens.explain import localisation, perturbation, registry

pytestmark = pytest.mark.usefixtures("one_thread")


def _sample(methods: list[str], dataset: ClassOrderedImages | None = None) -> ExplainedSample:
    torch.manual_seed(0)
    loader = DataLoader(dataset or ClassOrderedImages((6, 5, 4)), batch_size=4)
    return ExplainedSample.from_loader(TinyConvNet(width=4).eval(), loader, ["a", "b", "c"], ["lung"], None, "first",
                                       methods=methods)


def _steps() -> list:
    return [AopcCallback(region_size=4, perturbation="mean", correct_only=False), LocalisationCallback(),
            ShortcutCallback(), HeatmapStatsCallback()]


def _run(sample: ExplainedSample) -> Findings:
    found = Findings()
    for step in _steps():
        found.update(step.explain(sample))
    return found


@pytest.fixture(scope="module")
def runs() -> dict:
    """The default (`[gradcam]`) and a two-method sample through every step; explainer calls counted."""
    calls: list[int] = []
    explain = registry.explain

    def counted(name, model, images, targets, seed=0):
        calls.append(len(images))
        return explain(name, model, images, targets, seed=seed)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "explain", counted)
        default = _run(_sample(["gradcam"]))
        both_sample = _sample(["gradcam", "saliency"])
        both = _run(both_sample)
    torch.set_num_threads(threads)
    return {"default": default, "both": both, "sample": both_sample, "calls": calls}


def test_every_step_logs_every_method_and_gradcam_keeps_its_names_and_values(runs: dict) -> None:
    default, both = runs["default"], runs["both"]
    # The default run logs today's names only, and the same values when more methods are chosen.
    assert not [n for n in default.metrics if n.startswith(("xai/gradcam/", "xai/saliency/"))]
    assert not [p for p in (*default.figures, *default.arrays) if "/methods/" in p]
    legacy = set(default.metrics)
    assert {"xai/aopc_morf", "xai/aopc_morf/a", "xai/loc/lung/relevance_mass_accuracy",
            "xai/shortcut/flagged_classes", "xai/shortcut/a/border_mass"} <= legacy
    for name in legacy:
        np.testing.assert_equal(both.metrics[name], default.metrics[name])
        for method in ("gradcam", "saliency"):
            assert method_name(name, method) in both.metrics, method_name(name, method)
        np.testing.assert_equal(both.metrics[method_name(name, "gradcam")], default.metrics[name])
    assert set(both.metrics) == legacy | {method_name(n, m) for n in legacy for m in ("gradcam", "saliency")}
    assert "xai/saliency/aopc/morf" in both.metrics and "xai/saliency/loc/lung/auc" in both.metrics
    # Figures and arrays: Grad-CAM's where they were, each other method's under methods/<method>/.
    assert set(default.figures) < set(both.figures)
    assert {"figures/methods/saliency/aopc/curves.png", "figures/methods/saliency/heatmaps/four_colour.png",
            "figures/methods/saliency/heatmaps/eigen_a.png", "figures/methods/saliency/shortcut/a.png"
            } <= set(both.figures)
    assert {f"explain/methods/saliency/{step}.npz" for step in ("aopc", "localisation", "shortcut", "heatmap_stats")
            } <= set(both.arrays)
    assert set(default.arrays) < set(both.arrays)
    assert catalog.uncatalogued("metric", set(both.metrics)) == []
    assert catalog.uncatalogued("artifact", {*both.figures, *both.arrays}) == []


def test_a_full_resolution_method_is_scored_as_the_pure_functions_score_its_maps(runs: dict) -> None:
    dataset = ClassOrderedImages((6, 5, 4))
    sample, found = runs["sample"], runs["both"]
    images = dataset.images[sample.positions]
    labels = torch.from_numpy(dataset.labels[sample.positions])
    with torch.no_grad():
        predicted = sample.net(images).argmax(dim=1)
    # Localisation explains the true class: saliency maps at 16 x 16 (the image), against the lung mask.
    maps = registry.explain("saliency", sample.net, images, labels)
    assert maps.shape == (15, 16, 16)
    masks = dataset.mask.expand(len(images), -1, -1, -1)
    reference = localisation.localisation_scores(maps, masks)
    for score, values in reference.items():
        assert found.metrics[f"xai/saliency/loc/lung/{score}"] == pytest.approx(np.nanmean(values), abs=1e-6)
    # AOPC explains the predicted class; image i's noise is seeded by its position (here: mean, no noise).
    explained = registry.explain("saliency", sample.net, images, predicted)
    curves = perturbation.perturbation_curves(sample.net, images, explained, predicted, region_size=4,
                                              perturbation="mean")
    assert found.metrics["xai/saliency/aopc/morf"] == pytest.approx(perturbation.aopc(curves), abs=1e-5)
    aopc = found.arrays["explain/methods/saliency/aopc.npz"]
    np.testing.assert_allclose(aopc["curves_morf"], curves.numpy(), atol=1e-5)
    # Statistics and the audit take the maps area-pooled to at most 32 px a side: 16 x 16 stays as it is.
    stats = found.arrays["explain/methods/saliency/heatmap_stats.npz"]
    assert stats["mean_explained"].shape == (3, 16, 16)
    np.testing.assert_allclose(stats["mean_explained"][0], maps[labels == 0].mean(dim=0).numpy(), rtol=1e-5,
                               atol=1e-7)


def test_each_methods_maps_are_computed_once_and_shared(runs: dict) -> None:
    # 15 images: one pass for the predicted classes (AOPC, audit), one for the true ones (localisation, stats).
    assert sum(runs["calls"]) == 2 * 15
    assert runs["sample"].timer.totals["maps_saliency"] > 0
