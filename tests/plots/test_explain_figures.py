"""The explanation figures show what their arrays hold: every kept eigen-heatmap and a variance table
that reaches the threshold, signed maps on a scale centred on zero, the four-colour map only where
relevance is meaningful, overlays naming the explained class with a colour bar, names ellipsised."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import AxesImage

from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from heatlens.plots import explain as plots
from heatlens.plots.common import ELLIPSIS, draw_overlay, ellipsise


def images_of(figure) -> list[AxesImage]:
    return [image for ax in figure.axes for image in ax.images]


def colorbars(figure) -> list:
    return [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]


def test_ellipsis_keeps_the_start_and_the_file_name_and_the_width() -> None:
    name = "COVID-19_Radiography_Dataset/Viral Pneumonia/images/Viral Pneumonia-1345.png"
    short = ellipsise(name, 30)
    assert short == "COVI\u2026/Viral Pneumonia-1345.png" and len(short) == 30
    assert ellipsise(name, 12) == "\u2026ia-1345.png"
    assert ellipsise("Normal-3.png", 28) == "Normal-3.png"
    sentence = "a very long run name without any slash in it at all"
    assert ellipsise(sentence, 20) == sentence[:7] + ELLIPSIS + sentence[-12:]


def eigen_case(kept: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ratios = np.sort(rng.dirichlet(np.ones(kept + 3)))[::-1][:kept]
    ratios = ratios * 0.96 / ratios.sum()  # the kept components reach 96 %: over a 0.95 threshold
    maps = rng.normal(size=(3, 8, 8))
    return maps[0], rng.normal(size=(kept, 8, 8)), ratios, maps[1], maps[2]


def table_rows(figure) -> list[list[str]]:
    table = next(ax.tables[0] for ax in figure.axes if ax.tables)
    cells = table.get_celld()
    n_rows = max(r for r, _ in cells) + 1
    return [[cells[r, c].get_text().get_text() for c in range(3)] for r in range(1, n_rows)]


def test_eigen_figure_shows_every_kept_component_and_the_table_reaches_the_threshold() -> None:
    mean, components, ratios, example, rebuilt = eigen_case(15)
    figure = plots.eigen_heatmaps_figure("Viral Pneumonia", mean, components, ratios, example, rebuilt, variance=0.95)
    titles = [ax.get_title() for ax in figure.axes]
    assert [t for t in titles if t.startswith("eigen ")] == [f"eigen {k} ({r:.0%})" for k, r in
                                                            zip(range(1, 16), ratios)]
    assert "all 15 components" in figure._suptitle.get_text()
    rows = table_rows(figure)
    assert [r[0] for r in rows] == [str(k) for k in range(1, 16)]
    assert float(rows[-1][2]) == pytest.approx(0.96, abs=5e-4) and float(rows[-1][2]) >= 0.95
    assert float(rows[-2][2]) == pytest.approx(np.cumsum(ratios)[-2], abs=5e-4)


def test_eigen_figure_says_first_k_of_n_and_a_long_table_keeps_its_last_row() -> None:
    mean, components, ratios, example, rebuilt = eigen_case(40)
    figure = plots.eigen_heatmaps_figure("COVID", mean, components, ratios, example, rebuilt, max_components=6,
                                         max_table_rows=10)
    assert "first 6 of 40 components" in figure._suptitle.get_text()
    assert sum(ax.get_title().startswith("eigen ") for ax in figure.axes) == 6
    rows = table_rows(figure)
    assert len(rows) == 10 and rows[-2][0] == "\u22ee" and rows[-1][0] == "40"
    assert float(rows[-1][2]) == pytest.approx(np.sum(ratios), abs=5e-4)


def test_signed_maps_use_a_diverging_scale_centred_on_zero() -> None:
    grid = np.random.default_rng(1).normal(size=(3, 3, 4, 4))
    grid[1] = np.nan  # no test image of class 1
    figure = plots.average_heatmap_grid(grid, ["a", "b", "c"])
    limit = float(np.nanmax(np.abs(grid)))
    assert {image.get_clim() for image in images_of(figure)} == {(-limit, limit)}
    image = images_of(figure)[0]
    assert image.get_cmap().name == "RdBu_r"
    # zero is drawn white-ish, not a colour of either sign
    assert np.allclose(image.cmap(image.norm(0.0))[:3], 0.97, atol=0.03)


def test_four_colour_map_is_drawn_over_the_mean_image_only_where_relevance_is_meaningful() -> None:
    # Class 0 is relevant on the left, class 1 on the right; the bottom row is negative for both.
    maps = np.zeros((2, 4, 4))
    maps[0, :3, :2] = 1.0
    maps[1, :3, 2:] = 2.0
    maps[:, 3, :] = -1.0
    mean_image = np.full((4, 4), 0.5)
    figure = plots.four_colour_map(np.zeros((4, 4), int), ["left", "right"], mean_image=mean_image, mean_maps=maps)
    background, overlay = images_of(figure)
    assert np.allclose(background.get_array(), 0.5)
    rgba = np.asarray(overlay.get_array())  # computed finer than the image, over the same extent
    assert rgba.shape[:2] == (256, 256) and overlay.get_extent() == background.get_extent()
    assert np.all(rgba[-40:, :, 3] == 0)  # the bottom row has no relevance: the X-ray shows through
    assert np.all(rgba[:150, :100, 3] > 0) and np.all(rgba[:150, -100:, 3] > 0)
    left, right = (to_rgba(plots.CLASS_COLOURS[k])[:3] for k in range(2))
    assert np.allclose(rgba[:150, :100, :3], left) and np.allclose(rgba[:150, -100:, :3], right)


def test_overlays_name_the_explained_class_carry_a_colour_bar_and_keep_the_aspect_ratio() -> None:
    images = np.random.default_rng(2).random((2, 1, 32, 64))  # wider than tall
    heat = np.random.default_rng(3).random((2, 32, 64))
    long_id = "some/deep/folder/structure/of/a/dataset/Viral Pneumonia-1345.png"
    figure = plots.gradcam_overlays(images, heat, [f"correct: COVID (0.91)\n{long_id}", "WRONG: Normal (0.55)\nb.png"],
                                    explained=["COVID", "Normal"])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert "map of COVID" in titles[0] and "map of Normal" in titles[4]
    assert ELLIPSIS in titles[0] and titles[0].split("\n")[1].endswith("/Viral Pneumonia-1345.png")
    assert len(colorbars(figure)) == 1
    height, width = images_of(figure)[0].get_array().shape[:2]
    assert (height, width) == (32, 64)
    figure_width, figure_height = figure.get_size_inches()
    figure.canvas.draw()  # constrained layout places the panels
    box = figure.axes[0].get_position()
    assert box.width * figure_width == pytest.approx(2 * box.height * figure_height, rel=0.02)


def test_an_empty_map_is_said_to_be_empty_not_drawn_as_a_uniform_square() -> None:
    figure = Figure()
    ax = figure.subplots()
    assert draw_overlay(ax, np.full((8, 8), 0.5), np.zeros((4, 4))) is False
    assert len(ax.images) == 1 and "no positive" in ax.texts[0].get_text()
    ax.clear()
    assert draw_overlay(ax, np.full((8, 8), 0.5), np.eye(4)) is True
    heat = ax.images[1]
    assert heat.get_array().shape == (8, 8)  # resized to the image
    alpha = np.asarray(heat.get_alpha())
    assert alpha.min() == 0.0 and alpha.max() > 0.5  # zero relevance is transparent
