import numpy as np
import pytest
import torch

from heatlens.explain import ExplainError, localisation


def hand_case():
    heat = np.array([[4, 3, 0, 0], [2, 1, 0, 0], [0, 0, 5, 0], [0, 0, 0, 0]], dtype=float)
    mask = np.zeros((4, 4), dtype=np.uint8)
    mask[:2, :2] = 1
    return heat, mask


def test_hand_made_case_every_score():
    heat, mask = hand_case()
    got = localisation.localisation_scores(heat[None], mask[None], top_k=0.25)
    assert got["pointing_game"][0] == 0.0  # the maximum (5) lies outside the mask
    assert got["relevance_mass_accuracy"][0] == pytest.approx(10 / 15)
    assert got["relevance_rank_accuracy"][0] == pytest.approx(3 / 4)  # top-4 = 5, 4, 3, 2
    assert got["top_k_intersection"][0] == pytest.approx(3 / 4)  # k = 4 pixels
    assert got["top_k_iou"][0] == pytest.approx(3 / 5)
    # AUC: each of the 4 mask scores beats the 11 zeros and loses to the 5 -> 44 of 48 pairs
    assert got["auc"][0] == pytest.approx(44 / 48)


def test_pointing_game_ties_and_perfect_heatmap():
    heat, mask = hand_case()
    tied = heat.copy()
    tied[0, 0] = 5  # two maxima, one inside
    perfect = mask.astype(float)
    got = localisation.localisation_scores(np.stack([tied, perfect]), np.stack([mask, mask]), top_k=0.25)
    assert got["pointing_game"].tolist() == [1.0, 1.0]
    assert got["relevance_mass_accuracy"][1] == 1.0 and got["relevance_rank_accuracy"][1] == 1.0
    assert got["top_k_iou"][1] == 1.0 and got["auc"][1] == 1.0


def test_empty_and_full_masks_are_nan_explicitly():
    heat, mask = hand_case()
    masks = np.stack([np.zeros_like(mask), np.ones_like(mask), mask])
    got = localisation.localisation_scores(np.stack([heat] * 3), masks)
    for name, values in got.items():
        assert np.isnan(values[0]), name
        assert not np.isnan(values[2]), name
    assert np.isnan(got["auc"][1]) and got["relevance_mass_accuracy"][1] == 1.0


def test_coarse_heatmap_is_resized_and_torch_masks_with_channel_accepted():
    heat = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    mask[..., :4, :4] = 1
    got = localisation.localisation_scores(heat, mask, top_k=0.25)
    assert got["pointing_game"][0] == 1.0 and got["top_k_iou"][0] == 1.0


def test_bad_input():
    heat, mask = hand_case()
    with pytest.raises(ExplainError, match="binary"):
        localisation.localisation_scores(heat[None], mask[None] * 3)
    with pytest.raises(ExplainError, match="same B"):
        localisation.localisation_scores(heat[None], np.stack([mask, mask]))
    with pytest.raises(ExplainError, match="top_k"):
        localisation.localisation_scores(heat[None], mask[None], top_k=10)
