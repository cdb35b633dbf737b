"""The planted check of the explainer leaderboard: on a small trained model, random maps rank last on every
faithfulness and localisation metric, and a model-independent edge detector fails the randomisation tests
that Grad-CAM passes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from explain_models import TinyConvNet

from heatlens.explain import registry, scoring


def planted(n: int, seed: int, side: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class 1 carries a bright 8 px square at a random place (its mask), class 0 only noise."""
    g = torch.Generator().manual_seed(seed)
    images = 0.3 * torch.randn(n, 1, side, side, generator=g)
    labels = torch.arange(n) % 2
    masks = torch.zeros(n, 1, side, side, dtype=torch.uint8)
    for i in range(n):
        r, c = torch.randint(0, side - 8, (2,), generator=g).tolist()
        if labels[i] == 1:
            images[i, :, r:r + 8, c:c + 8] += 2.0
            masks[i, :, r:r + 8, c:c + 8] = 1
    return images, labels, masks


def edges(model, images, targets):
    """Sobel magnitude: a heatmap that never looks at the model."""
    grey = images.mean(1, keepdim=True)
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    return torch.sqrt(F.conv2d(grey, kx, padding=1) ** 2 + F.conv2d(grey, kx.transpose(2, 3), padding=1) ** 2)[:, 0]


@pytest.fixture(scope="module")
def board() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = TinyConvNet(in_chans=1, num_classes=2, width=8)
    images, labels, _ = planted(256, seed=0)
    optimiser = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(6):
        for i in range(0, 256, 32):
            optimiser.zero_grad()
            F.cross_entropy(net(images[i:i + 32]), labels[i:i + 32]).backward()
            optimiser.step()
    net.eval()
    test, truth, masks = planted(16, seed=1)
    assert (net(test).argmax(1) == truth).float().mean() >= 0.9  # the model learnt the square
    noise = torch.Generator().manual_seed(5)

    def random_maps(model, x, targets):  # fresh noise at every call: depends on nothing
        return torch.rand(len(x), *x.shape[-2:], generator=noise)

    explainers = {"gradcam": registry.explainer("gradcam"), "saliency": registry.explainer("saliency"),
                  "edges": edges, "random": random_maps}
    options = scoring.Options(region_size=4, perturbation="mean")
    per_image = {name: scoring.score_batch(net, test, truth, fn(net, test, truth), fn, {"box": masks}, options,
                                           metric_options={"max_sensitivity": {"nr_samples": 3}})
                 for name, fn in explainers.items()}
    result = scoring.leaderboard(per_image, scoring.metric_directions(["box"]))
    torch.set_num_threads(threads)
    return result


def test_random_maps_rank_last_on_faithfulness_and_localisation(board):
    scores = board["scores"]
    checked = [m for m in board["metrics"] if scores["random"][m]["family"] in ("faithfulness", "localisation")]
    assert {"aopc_morf", "aopc_lerf", "road_morf", "road_lerf", "insertion_auc", "deletion_auc",
            "faithfulness_correlation", "box_mass", "box_rank", "box_pointing"} <= set(checked)
    for metric in checked:
        assert scores["random"][metric]["rank"] == len(board["methods"]), metric


def test_edge_detector_fails_randomisation_gradcam_passes(board):
    scores = board["scores"]
    for metric in ("randomisation_corr", "random_logit"):
        assert scores["edges"][metric]["estimate"] > 0.99  # identical maps whatever the weights or class
        assert scores["gradcam"][metric]["estimate"] < 0.3
        assert scores["gradcam"][metric]["rank"] < scores["edges"][metric]["rank"]


def test_leaderboard_intervals_hold_their_estimates(board):
    for method in board["methods"]:
        for entry in board["scores"][method].values():
            assert entry["low"] <= entry["estimate"] <= entry["high"]
    assert board["methods"][0] == "gradcam" and board["methods"][-1] == "random"


def test_bootstrap_and_ranks_on_a_toy_case():
    mean, low, high = scoring.bootstrap_interval(np.array([1.0, 1.0, np.nan, 1.0]))
    assert (mean, low, high) == (1.0, 1.0, 1.0)
    board = scoring.leaderboard({"a": {"up": np.array([1.0, 3.0]), "down": np.array([5.0])},
                                 "b": {"up": np.array([2.0, 2.0]), "down": np.array([1.0])},
                                 "c": {"up": np.array([0.0]), "down": np.array([np.nan])}},
                                {"up": ("faithfulness", True), "down": ("randomisation", False)})
    ranks = {m: (board["scores"][m]["up"]["rank"], board["scores"][m]["down"]["rank"]) for m in "abc"}
    assert ranks == {"a": (1, 2), "b": (1, 1), "c": (3, None)}  # a tie shares the best rank; NaN is unranked
    assert board["mean_rank"] == {"a": 1.5, "b": 1.0, "c": 3.0} and board["methods"] == ["b", "a", "c"]
