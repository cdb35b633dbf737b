"""Explanations per finding (multi-label): every (image, positive finding) pair explained with that finding's
sigmoid, localised against that finding's mask channel (and box), averaged, audited and drawn per finding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_models import TinyConvNet
from torch.utils.data import DataLoader, Dataset

from heatlens import catalog
from heatlens.callbacks import (
    AopcCallback,
    EmbeddingsCallback,
    ExplainedSample,
    ExplainersCallback,
    GradCamCallback,
    HeatmapStatsCallback,
    LocalisationCallback,
    ShortcutCallback,
)
from heatlens.explain import cam, localisation, metrics, perturbation

pytestmark = pytest.mark.usefixtures("one_thread")
FINDINGS = ["Effusion", "Mass", "Nodule"]


class MultiLabelImages(Dataset):
    """Items as the multi-label datamodule makes them (ml_contract): labels (K,) 1 / 0 / NaN, a shared `lung`
    mask, per-finding `lesion` masks (a blob per positive finding) and `box` masks (its bounding square)."""

    mask_kinds = ["lung", "lesion", "box"]

    def __init__(self, n: int = 14, side: int = 16) -> None:
        rng = np.random.default_rng(0)
        self.labels = (rng.random((n, 3)) < 0.5).astype(np.float32)
        self.labels[2, 1] = np.nan  # unknown: never explained
        self.labels[3:8] = 0  # no finding: images 4-7 are a whole batch of 4 without one
        self.ids = [f"img{i:03d}.png" for i in range(n)]
        self.images = torch.randn(n, 1, side, side, generator=torch.Generator().manual_seed(0))
        self.lesion = torch.zeros(n, 3, side, side, dtype=torch.uint8)
        self.box = torch.zeros(n, 3, side, side, dtype=torch.uint8)
        corners = [(1, 1), (1, 8), (8, 4)]  # finding k's region
        for i, k in zip(*np.nonzero(self.labels == 1)):
            top, left = corners[k]
            self.box[i, k, top:top + 6, left:left + 6] = 1
            self.lesion[i, k, top + 1:top + 5, left + 1:left + 5] = 1
        self.lung = torch.zeros(1, side, side, dtype=torch.uint8)
        self.lung[:, 1:-1, 1:-1] = 1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": torch.from_numpy(self.labels[index]),
                "index": torch.tensor(index),
                "masks": {"lung": self.lung, "lesion": self.lesion[index], "box": self.box[index]}}


@pytest.fixture(scope="module")
def dataset() -> MultiLabelImages:
    return MultiLabelImages()


def _sample(dataset: MultiLabelImages, methods: tuple[str, ...] = ("gradcam",)) -> ExplainedSample:
    torch.manual_seed(0)
    net = TinyConvNet(num_classes=3, width=8).eval()  # seed 0: every finding's Grad-CAM has positive cells
    return ExplainedSample.from_loader(net, DataLoader(dataset, batch_size=4), FINDINGS, dataset.mask_kinds, None,
                                       "first", methods=methods)


def test_targets_are_the_positive_findings_and_aopc_scores_their_sigmoid(dataset: MultiLabelImages) -> None:
    sample = _sample(dataset)
    assert sample.multilabel
    targets = sample.targets("prediction")
    expected = [(i, k) for i, k in zip(*np.nonzero(dataset.labels == 1))]  # NaN and 0 are never explained
    assert list(zip(sample.positions[targets.rows].tolist(), targets.classes.tolist())) == expected
    assert targets.groups.tolist() == targets.classes.tolist()

    found = AopcCallback(region_size=4, perturbation="mean").explain(sample)
    arrays = found.arrays["explain/aopc.npz"]
    assert arrays["findings"].tolist() == [k for _, k in expected]
    images = dataset.images[[i for i, _ in expected]]
    classes = torch.tensor([k for _, k in expected])
    maps = cam.heatmaps_for(cam.gradcam_all_classes(sample.net, images), classes)  # each finding's own map
    curves = perturbation.perturbation_curves(sample.net, images, maps, classes, region_size=4, perturbation="mean",
                                              score="sigmoid", correct_only=True)
    np.testing.assert_allclose(arrays["curves_morf"], curves.numpy(), atol=1e-5)
    with torch.no_grad():
        detected = torch.sigmoid(sample.net(images)).gather(1, classes[:, None])[:, 0] > 0.5
    assert np.isnan(arrays["curves_morf"][~detected.numpy(), 0]).all()  # correct_only: missed findings left out
    assert found.metrics["xai/aopc_morf"] == pytest.approx(perturbation.aopc(curves), abs=1e-6)
    per_image = perturbation.aopc_per_image(curves).numpy()
    for k, finding in enumerate(FINDINGS):
        chosen = per_image[(classes == k).numpy()]
        chosen = chosen[~np.isnan(chosen)]
        want = chosen.mean() if len(chosen) else np.nan
        np.testing.assert_allclose(found.metrics[f"xai/aopc_morf/{finding}"], want, atol=1e-6)


def test_localisation_uses_each_findings_own_mask_channel_and_its_box(dataset: MultiLabelImages) -> None:
    sample = _sample(dataset)
    found = LocalisationCallback().explain(sample)
    pairs = list(zip(*np.nonzero(dataset.labels == 1)))
    images = dataset.images[[i for i, _ in pairs]]
    classes = torch.tensor([k for _, k in pairs])
    heat = cam.relu(cam.heatmaps_for(cam.gradcam_all_classes(sample.net, images), classes))
    lesion = torch.stack([dataset.lesion[i, k] for i, k in pairs])
    box = torch.stack([dataset.box[i, k] for i, k in pairs])
    for kind, masks in (("lesion", lesion), ("box", box), ("lung", dataset.lung.expand(len(pairs), -1, -1))):
        scores = localisation.localisation_scores(heat, masks)
        if kind == "box":
            scores |= localisation.box_scores(heat, masks)
        for score, values in scores.items():
            assert found.metrics[f"xai/loc/{kind}/{score}"] == pytest.approx(np.nanmean(values), abs=1e-9), score
            for k, finding in enumerate(FINDINGS):
                assert found.metrics[f"xai/loc/{kind}/{score}/{finding}"] == pytest.approx(
                    np.nanmean(values[(classes == k).numpy()]), abs=1e-9)
    area = lesion.flatten(1).double().mean(dim=1)
    assert found.metrics["xai/loc/lesion/uniform_relevance_mass_accuracy"] == pytest.approx(float(area.mean()))
    assert {f"xai/loc/box/hit_iou_{t:g}" for t in localisation.IOU_THRESHOLDS} <= set(found.metrics)
    assert catalog.uncatalogued("metric", set(found.metrics)) == []


def test_statistics_audit_overlays_and_embeddings_are_per_finding(dataset: MultiLabelImages) -> None:
    sample = _sample(dataset, ("gradcam", "saliency"))
    positives = dataset.labels == 1
    stats = HeatmapStatsCallback().explain(sample)
    counts = stats.arrays["explain/heatmap_stats.npz"]["counts"]
    assert counts.tolist() == positives.sum(axis=0).tolist()  # grid row k: the images showing finding k
    rows = sample.gathered_cams()
    grid = stats.arrays["explain/heatmap_stats.npz"]["mean_grid"]
    np.testing.assert_allclose(grid[1], rows.maps[positives[:, 1]].mean(axis=0), rtol=1e-5, atol=1e-7)
    assert {f"figures/heatmaps/eigen_{f}.png" for f in FINDINGS} <= set(stats.figures)
    assert "figures/methods/saliency/heatmaps/eigen_Mass.png" in stats.figures

    audit = ShortcutCallback().explain(sample)
    assert {f"xai/shortcut/{f}/flag" for f in FINDINGS} | {f"xai/saliency/shortcut/{f}/flag" for f in FINDINGS} \
        <= set(audit.metrics)
    assert audit.arrays["explain/shortcut.npz"]["findings"].tolist() == np.nonzero(positives)[1].tolist()

    overlays = GradCamCallback(samples_per_group=1).explain(sample)
    assert {f"figures/gradcam/{f}.png" for f in FINDINGS} == set(overlays.figures)
    gradcam = overlays.arrays["explain/gradcam.npz"]
    np.testing.assert_allclose(gradcam["probabilities"], torch.sigmoid(torch.from_numpy(rows.logits)).numpy())
    assert gradcam["labels"].shape == (len(dataset), 3)

    embedded = EmbeddingsCallback(raw_size=8).explain(sample)
    first = np.where(positives.any(axis=1), positives.argmax(axis=1), 3)
    assert embedded.arrays["explain/embeddings.npz"]["labels"].tolist() == first.tolist()
    names = {n for found in (stats, audit, overlays, embedded) for n in (*found.figures, *found.arrays)}
    assert catalog.uncatalogued("metric", set(audit.metrics)) == []
    assert catalog.uncatalogued("artifact", names) == []


def test_the_explainers_step_scores_each_positive_finding_by_its_sigmoid_and_own_mask(dataset: MultiLabelImages) -> None:
    sample = _sample(dataset)
    found = ExplainersCallback(methods=["gradcam"], num_images=4, examples=1, region_size=4, perturbation="mean",
                               metric_options={"max_sensitivity": {"nr_samples": 1}}).explain(sample)
    # "first": the sample's first 4 images; their positive findings (NaN and 0 never explained)
    pairs = [(int(i), int(k)) for i, k in zip(*np.nonzero(dataset.labels[:4] == 1))]
    images = dataset.images[[i for i, _ in pairs]]
    findings = torch.tensor([k for _, k in pairs])
    heat = cam.heatmaps_for(cam.gradcam_all_classes(sample.net, images), findings)
    masks = dataset.lesion[[i for i, _ in pairs], findings]
    mass = localisation.localisation_scores(cam.relu(heat), masks)["relevance_mass_accuracy"]
    assert found.metrics["xai/method/gradcam/lesion_mass"] == pytest.approx(np.nanmean(mass), abs=1e-6)
    heat = cam.relu(heat)  # the registry's Grad-CAM, as every method's map, is ReLU'd
    curves = torch.cat([perturbation.perturbation_curves(sample.net, images[j:j + 1], heat[j:j + 1], findings[j:j + 1],
                                                         region_size=4, perturbation="mean", seed=i, score="sigmoid")
                        for j, (i, _) in enumerate(pairs)])
    aopc = perturbation.aopc_per_image(curves).numpy()
    assert found.metrics["xai/method/gradcam/aopc_morf"] == pytest.approx(np.nanmean(aopc), abs=1e-6)
    road = torch.cat([metrics.road_morf(sample.net, images[j:j + 1], findings[j:j + 1], heat[j:j + 1], seed=i,
                                        score="sigmoid") for j, (i, _) in enumerate(pairs)])
    assert found.metrics["xai/method/gradcam/road_morf"] == pytest.approx(road.mean().item(), abs=1e-6)
    arrays = found.arrays["explain/explainers.npz"]
    assert list(zip(arrays["index"].tolist(), arrays["predictions"].tolist())) == pairs
    assert found.documents["reports/explainers.json"]["num_explained"] == len(pairs)

