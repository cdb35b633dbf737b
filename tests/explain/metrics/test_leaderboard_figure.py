"""The leaderboard figure: columns grouped by family, one box per metric's best method, readable text."""

import numpy as np
from matplotlib.patches import Rectangle

from heatlens.explain import scoring
from heatlens.plots.explainers import FAMILY_ORDER, leaderboard_figure


def board() -> dict:
    directions = {"entropy": ("complexity", False), "aopc_morf": ("faithfulness", True),
                  "random_logit": ("randomisation", False), "road_morf": ("faithfulness", False),
                  "lung_mass": ("localisation", True)}
    rng = np.random.default_rng(0)
    per_image = {m: {k: rng.random(6) + i for k in directions} for i, m in enumerate(["a", "b", "c", "d"])}
    return scoring.leaderboard(per_image, directions)


def test_columns_are_grouped_by_family_and_each_best_is_boxed() -> None:
    data = board()
    ax = leaderboard_figure(data).axes[0]
    labels = [t.get_text().rsplit(" ", 1)[0] for t in ax.get_xticklabels()]
    assert labels == ["aopc_morf", "road_morf", "lung_mass", "random_logit", "entropy", "mean"]
    families = [t.get_text() for t in ax.texts if t.get_text() in FAMILY_ORDER]
    assert families == ["faithfulness", "localisation", "randomisation", "complexity"]
    boxes = [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
    best = sum(data["scores"][m][k]["rank"] == 1 for m in data["methods"] for k in data["metrics"])
    assert len(boxes) == best >= len(data["metrics"])


def test_numbers_on_the_dark_ends_of_the_colour_map_are_white() -> None:
    data = board()
    ax = leaderboard_figure(data).axes[0]
    # method "a" has the smallest values: best on the lower-is-better metrics, worst on the others (rank 4 of 4)
    first_row = [t for t in ax.texts if t.get_position()[1] == data["methods"].index("a")]
    colours = {t.get_text(): t.get_color() for t in first_row}
    estimate = data["scores"]["a"]["entropy"]["estimate"]
    assert data["scores"]["a"]["entropy"]["rank"] == 1 and colours[f"{estimate:.3g}"] == "white"
    middle = [t for t in ax.texts if t.get_position()[1] == data["methods"].index("b")]
    ranks = {f"{data['scores']['b'][k]['estimate']:.3g}": data["scores"]["b"][k]["rank"] for k in data["metrics"]}
    assert all(t.get_color() == "black" for t in middle if ranks.get(t.get_text()) in (2, 3))
