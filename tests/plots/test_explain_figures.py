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
from heatlens.plots.common import ELLIPSIS, class_colour, draw_overlay, ellipsise


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


def test_eigen_figure_shows_every_kept_component_and_the_cumulative_share_reaches_the_threshold() -> None:
    mean, components, ratios, example, rebuilt = eigen_case(15)
    figure = plots.eigen_heatmaps_figure("Viral Pneumonia", mean, components, ratios, example, rebuilt, variance=0.95)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title().startswith("eigen ")]
    cumulative = np.cumsum(ratios)
    assert titles == [f"eigen {k}: {r:.1%}\ncumulative {c:.1%}" for k, r, c in zip(range(1, 16), ratios, cumulative)]
    assert cumulative[-1] == pytest.approx(0.96, abs=1e-9)
    assert "15 components explain 96.0% of the variance (cut-off 95%)" in figure._suptitle.get_text()


def test_eigen_figure_says_how_many_components_it_shows_and_keeps_its_width() -> None:
    mean, components, ratios, example, rebuilt = eigen_case(40)
    figure = plots.eigen_heatmaps_figure("COVID", mean, components, ratios, example, rebuilt, max_components=6)
    assert "40 components explain 96.0% of the variance; first 6 shown" in figure._suptitle.get_text()
    assert sum(ax.get_title().startswith("eigen ") for ax in figure.axes) == 6
    few = plots.eigen_heatmaps_figure("COVID", *eigen_case(2))
    assert few.get_figwidth() == figure.get_figwidth()


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
    left, right = (to_rgba(class_colour(k))[:3] for k in range(2))
    assert np.allclose(rgba[:150, :100, :3], left) and np.allclose(rgba[:150, -100:, :3], right)


def test_overlays_name_the_explained_class_carry_a_colour_bar_and_keep_the_aspect_ratio() -> None:
    images = np.random.default_rng(2).random((2, 1, 32, 64))  # wider than tall
    heat = np.random.default_rng(3).random((2, 32, 64))
    long_id = "some/deep/folder/structure/of/a/dataset/Viral Pneumonia-1345.png"
    figure = plots.gradcam_overlays(images, heat, [f"correct: COVID (0.91)\n{long_id}", "WRONG: Normal (0.55)\nb.png"],
                                    explained=["COVID", "Normal"])
    captions = [row._suptitle.get_text() for row in figure.subfigs if row._suptitle is not None]
    assert "map of COVID" in captions[0] and "map of Normal" in captions[1]
    # a long id wraps between folders rather than being cut; its file name stays whole
    assert ELLIPSIS not in captions[0] and captions[0].replace("\n", "").endswith(long_id)
    assert captions[0].split("\n")[-1].endswith("/Viral Pneumonia-1345.png")
    assert len(colorbars(figure)) == 1
    height, width = images_of(figure)[0].get_array().shape[:2]
    assert (height, width) == (32, 64)
    figure.draw_without_rendering()  # constrained layout places the panels
    box = images_of(figure)[0].axes.get_window_extent()
    assert box.width == pytest.approx(2 * box.height, rel=0.02)


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
