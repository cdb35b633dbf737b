"""The shortcut figure shows one row per SpRAy cluster, suspect ones in red, and saves as a PNG."""

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from heatlens.explain.shortcut import audit_class
from heatlens.plots.shortcut import SUSPECT_COLOUR, shortcut_figure


def maps_at(centre: tuple[int, int], count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    maps = 0.1 * rng.random((count, 8, 8))
    maps[:, centre[0], centre[1]] += 1.0
    return maps


def panels(figure) -> list:
    return [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]


def first_column_titles(figure) -> list:
    cols = 4  # the mean panel and 3 examples
    return [ax.title for ax in panels(figure)[::cols]]


def test_one_row_per_cluster_suspect_in_red_and_saved(tmp_path: Path) -> None:
    heat = np.concatenate([maps_at((3, 2), 12, 1), maps_at((0, 0), 8, 2), np.zeros((1, 8, 8))])
    images = np.random.default_rng(0).random((len(heat), 1, 32, 32))
    audit = audit_class(heat)
    assert audit.n_clusters == 2
    figure = shortcut_figure(audit, images, heat, "COVID", titles=[f"id{i}" for i in range(len(heat))])
    assert len(panels(figure)) == 2 * 4 and len(figure.axes) == 2 * 4 + 1  # one colour bar
    marker, lesion = first_column_titles(figure)  # suspect clusters first
    assert lesion.get_text().startswith("cluster 0: 12 images\nnot suspect")
    assert marker.get_text().startswith("cluster 1: 8 images\nSUSPECT: corner:top_left")
    red = to_rgba(SUSPECT_COLOUR)
    assert to_rgba(marker.get_color()) == red and to_rgba(lesion.get_color()) != red
    assert "FLAGGED" in figure._suptitle.get_text() and "1 all-zero map(s)" in figure._suptitle.get_text()
    # the examples of the marker row are marker images (ids 12-19)
    examples = [ax.get_title() for ax in panels(figure)[1:4]]
    assert all(12 <= int(title[2:]) < 20 for title in examples)
    path = tmp_path / "COVID.png"
    figure.savefig(path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_single_cluster_and_no_cluster_figures_build(tmp_path: Path) -> None:
    heat = maps_at((3, 3), 2, 3)
    one = shortcut_figure(audit_class(heat), np.full((2, 16, 16), 0.5), heat, "Normal", examples=2)
    assert len(panels(one)) == 3 and one.axes[1].get_title() in {"#0", "#1"}
    assert "1 cluster(s), not flagged" in one._suptitle.get_text()
    one.savefig(tmp_path / "one.png")
    zero = np.zeros((3, 8, 8))
    none = shortcut_figure(audit_class(zero), np.zeros((3, 3, 16, 16)), zero, "Viral Pneumonia")
    assert "0 cluster(s)" in none._suptitle.get_text() and "no relevance" in none.axes[0].texts[0].get_text()
    none.savefig(tmp_path / "none.png")
    assert (tmp_path / "none.png").stat().st_size > 0


def test_arrays_must_match_the_audit() -> None:
    heat = maps_at((3, 3), 4, 3)
    with pytest.raises(ValueError, match="needs the 4 images, heatmaps and titles"):
        shortcut_figure(audit_class(heat), np.zeros((3, 16, 16)), heat, "COVID")
