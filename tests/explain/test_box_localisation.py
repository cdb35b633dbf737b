"""Box localisation as ChestX-ray8 reports it (Wang et al. 2017): threshold the map, box the largest component,
IoU with the ground-truth box, hit when IoU > T(IoU); and the `sigmoid` score of multi-label findings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_models import TinyConvNet

from heatlens.explain import perturbation
from heatlens.explain.errors import ExplainError
from heatlens.explain.localisation import IOU_THRESHOLDS, box_iou, box_scores
from heatlens.explain.metrics._common import class_scores


def test_hand_worked_boxes() -> None:
    mask = np.zeros((2, 8, 8), np.uint8)
    mask[:, 2:6, 2:6] = 1  # ground truth: rows 2-5, columns 2-5 (16 px)
    heat = np.zeros((2, 8, 8), np.float32)
    heat[0, 3:7, 3:7] = 1.0  # rows 3-6, columns 3-6: overlap 3 x 3 = 9, union 16 + 16 - 9 = 23
    heat[0, 0, 7] = 0.9  # a smaller component above the threshold: not the largest, ignored
    heat[0, 7, 0] = 0.4  # below the threshold 0.5 of the scaled map
    heat[1] = 0.0  # a constant map selects the whole image: IoU 16 / 64
    scores = box_scores(heat, mask)
    np.testing.assert_allclose(scores["box_iou"], [9 / 23, 16 / 64])
    # 9/23 = 0.391: a hit at T = 0.1, 0.2, 0.3, a miss from 0.4; 0.25: a hit at 0.1 and 0.2 only.
    for t, want in zip(IOU_THRESHOLDS, [(1, 1), (1, 1), (1, 0), (0, 0), (0, 0), (0, 0), (0, 0)]):
        np.testing.assert_array_equal(scores[f"hit_iou_{t:g}"], want)


def test_best_matching_box_coarse_maps_and_empty_masks() -> None:
    mask = np.zeros((2, 8, 8), np.uint8)
    mask[0, 0:2, 0:2] = 1  # two ground-truth boxes: the map matches the second exactly
    mask[0, 4:8, 4:8] = 1
    heat = np.zeros((2, 2, 2), np.float32)
    heat[0, 1, 1] = 1.0  # a 2 x 2 map: resized bilinearly, its top half-cell covers rows/cols 5-7 ...
    scores = box_scores(heat, mask)
    resized = torch.nn.functional.interpolate(torch.from_numpy(heat[:1])[:, None].double(), size=(8, 8),
                                              mode="bilinear", align_corners=False)[0, 0].numpy()
    rows, cols = np.nonzero(resized >= 0.5 * resized.max())
    predicted = (rows.min(), cols.min(), rows.max(), cols.max())
    assert scores["box_iou"][0] == pytest.approx(box_iou(predicted, (4, 4, 7, 7)))
    assert np.isnan(scores["box_iou"][1]) and np.isnan(scores["hit_iou_0.1"][1])  # no box: not scored
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0 and box_iou((0, 0, 3, 3), (0, 0, 3, 3)) == 1.0
    with pytest.raises(ExplainError, match="threshold"):
        box_scores(heat, mask, threshold=2.0)


def test_sigmoid_score_is_each_findings_own_probability() -> None:
    torch.manual_seed(0)
    net = TinyConvNet(num_classes=3, width=4).eval()
    images = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2, 1])
    maps = torch.rand(4, 4, 4, generator=torch.Generator().manual_seed(2))
    logit = perturbation.perturbation_curves(net, images, maps, targets, region_size=4, score="logit")
    sigmoid = perturbation.perturbation_curves(net, images, maps, targets, region_size=4, score="sigmoid")
    np.testing.assert_allclose(sigmoid.numpy(), torch.sigmoid(logit).numpy(), rtol=1e-6)
    with torch.no_grad():
        logits = net(images)
    picked = logits.gather(1, targets[:, None])[:, 0]
    np.testing.assert_allclose(class_scores(net, images, targets, "sigmoid", 2).numpy(),
                               torch.sigmoid(picked).numpy(), rtol=1e-6)
    # correct_only with a sigmoid: a finding counts when the model detects it (probability > 0.5).
    kept = perturbation.perturbation_curves(net, images, maps, targets, region_size=4, score="sigmoid",
                                            correct_only=True)
    np.testing.assert_array_equal(~torch.isnan(kept[:, 0]), picked > 0)
