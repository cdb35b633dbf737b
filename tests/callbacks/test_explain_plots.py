"""The explanation figures draw what their arrays say."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from heatlens.plots import explain as plots


def test_overlay_blends_the_jet_colour_into_the_image() -> None:
    image = np.zeros((1, 4, 4))
    heat = np.ones((4, 4))
    blended = plots._overlay(image, heat, alpha=0.25)
    expected = 0.25 * np.asarray(colormaps["jet"](1.0)[:3])
    np.testing.assert_allclose(blended[0, 0], expected)
    np.testing.assert_allclose(plots._overlay(np.full((4, 4), 0.8), heat, alpha=0.0)[2, 3], [0.8, 0.8, 0.8])


def test_overlay_figure_has_the_image_its_map_and_one_overlay_per_row() -> None:
    images, heat = np.random.rand(2, 1, 8, 8), np.random.rand(2, 8, 8)
    figure = plots.gradcam_overlays(images, heat, ["a", "b"], 0.5)
    panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2 * 3 and len(figure.axes) == 2 * 3 + 1  # one colour bar for all
    assert [ax.get_title() for ax in panels[:3]] == ["image", "heatmap", "heatmap over the image"]
    assert [row._suptitle.get_text() for row in figure.subfigs[:2]] == ["a", "b"]
    np.testing.assert_allclose(panels[4].images[0].get_array(), heat[1])  # the map column shows the map


def test_average_grid_shares_one_colour_scale_and_survives_an_absent_class() -> None:
    grid = np.random.rand(3, 3, 4, 4)
    grid[1] = np.nan  # no test image of class 1
    figure = plots.average_heatmap_grid(grid, ["a", "b", "c"])
    limits = {ax.images[0].get_clim() for ax in figure.axes if ax.images}
    # Raw Grad-CAM is signed: one scale, centred on zero, wide enough for every value.
    largest = float(np.nanmax(np.abs(grid)))
    assert limits == {(-largest, largest)}


def test_perturbation_curves_plot_the_mean_of_the_scored_images() -> None:
    morf = np.array([[1.0, 0.5, 0.0], [0.8, 0.6, 0.4], [np.nan, np.nan, np.nan]])
    figure = plots.perturbation_curves_figure({"morf": morf}, {"morf": 0.3})
    (line,) = figure.axes[0].lines
    np.testing.assert_allclose(line.get_ydata(), [0.9, 0.55, 0.2])
    assert "AOPC 0.300" in line.get_label()


def test_tsne_figure_colours_each_class_once_per_panel() -> None:
    labels = np.array([0, 1, 1, 2])
    figure = plots.tsne_side_by_side(np.random.rand(4, 2), np.random.rand(4, 2), labels, ["x", "y", "z"])
    assert [len(ax.collections) for ax in figure.axes[:2]] == [3, 3]
    assert [len(c.get_offsets()) for c in figure.axes[1].collections] == [1, 2, 1]
