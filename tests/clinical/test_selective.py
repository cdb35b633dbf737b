"""Risk-coverage curve and its area on hand-made cases; settings and TTA views."""

import numpy as np
import pytest
import torch

from heatlens.clinical import ClinicalConfigError, clinical_settings, risk_coverage, tta_probabilities
from heatlens.clinical.tta import tta_views


def test_risk_coverage_by_hand():
    confidence = np.array([0.9, 0.6, 0.8, 0.7])
    correct = np.array([True, False, True, False])
    curve = risk_coverage(confidence, correct)
    # Most confident first: 0.9 ok, 0.8 ok, 0.7 wrong, 0.6 wrong.
    np.testing.assert_allclose(curve.coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.risk, [0.0, 0.0, 1 / 3, 0.5])
    assert curve.aurc == pytest.approx((0 + 0 + 1 / 3 + 0.5) / 4)
    assert curve.risk_at(0.5) == 0.0 and curve.risk_at(1.0) == 0.5


def test_confidence_that_ranks_errors_first_has_the_larger_area():
    correct = np.array([True] * 8 + [False] * 2)
    good = risk_coverage(np.linspace(1, 0, 10), correct)
    bad = risk_coverage(np.linspace(0, 1, 10), correct)
    assert good.aurc < bad.aurc
    assert good.risk[-1] == bad.risk[-1] == 0.2  # full coverage: the plain error rate


def test_settings_defaults_and_one_line_errors():
    settings = clinical_settings({"operating_point": "sensitivity@0.95"})
    assert (settings.calibration, str(settings.operating_point), settings.tta) == ("temperature", "sensitivity@0.95",
                                                                                  "none")
    for block, key in (({"calibration": "platt"}, "clinical.calibration"), ({"tta": "heavy"}, "clinical.tta"),
                       ({"operating_point": "sens@0.9"}, "clinical.operating_point"),
                       ({"n_boot": 10}, "clinical.n_boot"), ({"confidence": 1.5}, "clinical.confidence"),
                       ({"bin": 10}, "clinical.bin")):
        with pytest.raises(ClinicalConfigError, match=key):
            clinical_settings(block)


def test_tta_views_are_seeded_and_average_probabilities():
    images = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    assert len(tta_views(images, "flips", 0)) == 2
    light = tta_views(images, "light", 7)
    assert len(light) == 4
    for a, b in zip(light, tta_views(images, "light", 7)):
        assert torch.equal(a, b)
    torch.testing.assert_close(tta_views(images, "flips", 0)[1][..., 0], images[..., -1])

    def forward(x):  # logits that see only the left half: a flip changes them
        return torch.stack([x[..., :4].mean((1, 2, 3)), x[..., 4:].mean((1, 2, 3))], dim=1) / 50

    probs = tta_probabilities(forward, images, "flips", 0)
    expected = (forward(images).softmax(-1) + forward(images.flip(-1)).softmax(-1)) / 2
    torch.testing.assert_close(probs, expected)
