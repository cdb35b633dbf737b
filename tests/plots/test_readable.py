"""Every figure reads at a glance: one colour per class across figures (colour-blind safe), no text
overlapping another in the drawn layout, sizes bounded for many classes or images, no repeated
panels, and every number printed on a figure explained on it."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.text import Text

from heatlens.clinical import reliability_bins
from heatlens.explain.shortcut import audit_class
from heatlens.plots import explain as plots
from heatlens.plots.calibration import operating_point_figure, reliability_figure
from heatlens.plots.common import CLASS_COLOURS, class_colour, wrap_caption
from heatlens.plots.perturbation import perturbation_curves_figure
from heatlens.plots.shortcut import shortcut_figure
from heatlens.plots.summary import summary_figure
from heatlens.plots.training import recall_history_figure, roc_figure

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
RNG = np.random.default_rng(0)


def hexes(colours) -> list[str]:
    return [to_hex(c) for c in colours]


def roc_curves(names, perfect=()) -> dict:
    """Hand-made staircase ROC curves; `perfect` classes reach TPR 1 at FPR 0 (they lie on one another)."""
    curves = {}
    for k, name in enumerate(names):
        if name in perfect:
            fpr, tpr = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0])
        else:
            fpr = np.array([0.0, 0.0, 0.02 * (k + 1), 0.1, 1.0])
            tpr = np.array([0.0, 0.6, 0.85, 0.97, 1.0])
        curves[name] = {"fpr": fpr, "tpr": tpr, "auc": float(np.trapezoid(tpr, fpr))}
    return curves


def aopc_case(n: int = 40, steps: int = 6):
    """MoRF curves falling for every class but the last, whose score rises: its AOPC is negative."""
    groups = np.arange(n) % 4
    falling = 0.9 - 0.1 * np.arange(steps + 1)
    morf = np.where(groups[:, None] == 3, 0.5 + 0.004 * np.arange(steps + 1), falling)
    curves = {"morf": morf, "lerf": np.full((n, steps + 1), 0.8), "random": np.tile(falling, (n, 1))}
    return curves, groups


def colour_of_label(handles_and_labels, name: str) -> str:
    handles, labels = handles_and_labels
    match = [h for h, label in zip(handles, labels) if label == name or label.startswith(name + " (")]
    assert len(match) == 1, (name, labels)
    handle = match[0]
    colour = handle.get_color() if hasattr(handle, "get_color") else handle.get_facecolor()[0]
    return to_hex(colour)


def test_the_palette_stays_apart_for_colour_blind_readers() -> None:
    """Okabe & Ito's eight colours, through the Machado et al. (2009) simulation of each colour-vision
    deficiency at full severity, stay at least 10 CAM02-UCS units apart (a just-noticeable difference is ~1)."""
    colorspacious = pytest.importorskip("colorspacious")
    palette = np.array([to_rgb(c) for c in CLASS_COLOURS[:8]])
    for deficiency in (None, "deuteranomaly", "protanomaly", "tritanomaly"):
        seen = palette if deficiency is None else np.clip(colorspacious.cspace_convert(
            palette, {"name": "sRGB1+CVD", "cvd_type": deficiency, "severity": 100}, "sRGB1"), 0, 1)
        ucs = colorspacious.cspace_convert(seen, "sRGB1", "CAM02-UCS")
        nearest = min(np.linalg.norm(a - b) for a, b in itertools.combinations(ucs, 2))
        assert nearest >= 10, (deficiency, nearest)


def test_a_class_has_one_colour_in_every_figure() -> None:
    expected = {name: to_hex(class_colour(k)) for k, name in enumerate(CLASSES)}
    assert len(set(expected.values())) == len(CLASSES)
    # ROC without a curve for Lung_Opacity (no positive in the test set): the others keep their colours.
    shown = [c for c in CLASSES if c != "Lung_Opacity"]
    roc = roc_figure(roc_curves(shown), class_names=CLASSES)
    roc_legend = roc.legends[0]
    roc_colours = {name: colour_of_label((roc_legend.legend_handles, [t.get_text() for t in roc_legend.texts]), name)
                   for name in shown}
    history = recall_history_figure({name: [(0, 0.5), (1, 0.6)] for name in CLASSES} | {"disease mean": [(0, 0.5)]})
    history_colours = {name: colour_of_label(history.axes[0].get_legend_handles_labels(), name) for name in CLASSES}
    tsne = plots.tsne_side_by_side(RNG.random((8, 2)), RNG.random((8, 2)), np.arange(8) % 4, CLASSES)
    tsne_colours = {c.get_label(): to_hex(c.get_facecolor()[0]) for c in tsne.axes[0].collections}
    curves, groups = aopc_case()
    aopc = perturbation_curves_figure(curves, {"morf": 0.3}, groups=groups, class_names=CLASSES)
    aopc_colours = {name: colour_of_label(aopc.axes[1].get_legend_handles_labels(), name) for name in CLASSES}
    four = plots.four_colour_map(np.arange(16).reshape(4, 4) % 4, CLASSES)
    four_colours = {t.get_text(): to_hex(h.get_edgecolor())
                    for t, h in zip(four.axes[0].get_legend().texts, four.axes[0].get_legend().legend_handles)}
    boxes = plots.heatmap_boxplots(RNG.normal(size=(4, 4, 5)).cumsum(-1), CLASSES)
    box_colours = {name: to_hex(patch.get_facecolor()) for name, patch in
                   zip(CLASSES, [p for p in boxes.axes[0].patches])}
    bins = reliability_bins(RNG.random(50), RNG.random(50) < 0.5, 5)
    reliability = reliability_figure({"top-1": [("raw", bins, "black")]} | {n: [("raw", bins, "black")] for n in CLASSES},
                                     class_names=CLASSES)
    title_colours = {ax.get_title(): to_hex(ax.title.get_color()) for ax in reliability.axes if ax.get_title() in CLASSES}
    for figure_colours in (roc_colours, history_colours, tsne_colours, aopc_colours, four_colours, box_colours,
                           title_colours):
        assert figure_colours == {name: expected[name] for name in figure_colours}, figure_colours
    assert set(history_colours) == set(tsne_colours) == set(aopc_colours) == set(four_colours) == set(CLASSES)


def hidden_tick_labels(figure: Figure) -> set[int]:
    """ids of the tick labels matplotlib does not draw: on axes turned off, or ticks outside the view."""
    hidden = set()
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = (high - low) * 1e-6
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not (ax.axison and axis.get_visible() and low - span <= tick.get_loc() <= high + span):
                    hidden |= {id(tick.label1), id(tick.label2)}
    return hidden


def texts_overlapping(figure: Figure) -> list[tuple[str, str]]:
    """Pairs of drawn, non-empty texts whose boxes intersect (by more than half a pixel)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # runs the layout, as savefig does
    renderer = canvas.get_renderer()
    hidden = hidden_tick_labels(figure)
    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    boxes = [(t, t.get_window_extent(renderer).padded(-0.5)) for t in texts]
    return [(a.get_text(), b.get_text()) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
            if box_a.width > 0 and box_b.width > 0 and box_a.overlaps(box_b)]


def readable_figures() -> dict:
    """Each figure of the issue (name -> what draws it) from small synthetic inputs with long names and ids."""
    images = RNG.random((4, 1, 32, 32))
    long_id = "COVID-19_Radiography_Dataset/Lung_Opacity/images/Lung_Opacity-1022.png"
    heat = np.concatenate([RNG.random((12, 8, 8)) * 0.1 + np.eye(8)[None] * (k + 1) for k in range(3)])
    audit = audit_class(heat)
    curves, groups = aopc_case()
    ratios = np.array([0.5, 0.3, 0.16])
    eigen_maps = RNG.normal(size=(6, 8, 8))
    bins = reliability_bins(RNG.random(50), RNG.random(50) < 0.5, 5)
    return {
        "roc": lambda: roc_figure(roc_curves(CLASSES, perfect=CLASSES[2:]), class_names=CLASSES),
        "gradcam": lambda: plots.gradcam_overlays(images, RNG.random((4, 32, 32)), [f"WRONG: Normal (0.54)\n{long_id}"] * 4,
                                          suptitle="Grad-CAM, true class Lung_Opacity", explained=["Normal"] * 4),
        "shortcut": lambda: shortcut_figure(audit, RNG.random((len(heat), 1, 32, 32)), heat, "Lung_Opacity",
                                    titles=[long_id] * len(heat)),
        "eigen": lambda: plots.eigen_heatmaps_figure("Viral Pneumonia", *eigen_maps[:1], eigen_maps[1:4], ratios,
                                             eigen_maps[4], eigen_maps[5], variance=0.95, mean_image=images[0]),
        "average_grid": lambda: plots.average_heatmap_grid(RNG.normal(size=(4, 4, 8, 8)), CLASSES, images[:, 0]),
        "four_colour": lambda: plots.four_colour_map(np.zeros((8, 8), int), CLASSES, images[0], RNG.normal(size=(4, 8, 8))),
        "aopc": lambda: perturbation_curves_figure(curves, {"morf": 0.3, "lerf": 0.0, "random": 0.2}, groups=groups,
                                           class_names=CLASSES),
        "summary": lambda: summary_figure(CLASSES, counts=np.full((4, 4), 5), curves=curves, aopc={"morf": 0.3},
                                          headline=[("test accuracy", "0.975", "")] + [
                                              (f"{name} sensitivity (op)", "0.94 [0.80, 1.00]",
                                               "specificity 0.88 [0.78, 0.98]") for name in CLASSES] * 3),
        "operating_point": lambda: operating_point_figure(np.array([[70, 3], [1, 16]]), "Viral Pneumonia", 0.0123,
                                                  "no missed case on val", {"estimate": 0.94, "low": 0.8, "high": 1.0},
                                                  {"estimate": 0.96, "low": 0.9, "high": 0.99}),
        "reliability": lambda: reliability_figure({n: [("raw", bins, "black")] for n in ["top-1", *CLASSES]}, class_names=CLASSES),
    }


@pytest.mark.parametrize("name", ["roc", "gradcam", "shortcut", "eigen", "average_grid", "four_colour", "aopc",
                                  "summary", "operating_point", "reliability"])
def test_no_text_overlaps_another_in_the_drawn_layout(name: str) -> None:
    figure = readable_figures()[name]()
    assert texts_overlapping(figure) == []


def test_the_overlap_check_sees_overlapping_text() -> None:
    figure = Figure(figsize=(3, 2))
    figure.text(0.1, 0.5, "a long caption cut mid-word")
    figure.text(0.3, 0.5, "another one")
    assert texts_overlapping(figure) == [("a long caption cut mid-word", "another one")]


def pixels(figure: Figure) -> tuple[float, float]:
    width, height = figure.get_size_inches()
    return width * figure.dpi, height * figure.dpi


def test_figures_stay_sized_to_their_content_with_many_classes_or_images() -> None:
    many = [f"finding {k}" for k in range(14)]
    grid = plots.average_heatmap_grid(RNG.normal(size=(14, 14, 8, 8)), many)
    assert max(pixels(grid)) <= 1200
    # eight near-identical clusters: four rows drawn, the rest counted in the title
    heat = np.concatenate([RNG.random((6, 8, 8)) * 0.1 + np.roll(np.eye(8), k, axis=1)[None] for k in range(8)])
    audit = audit_class(heat)
    assert audit.n_clusters >= 6
    figure = shortcut_figure(audit, RNG.random((len(heat), 32, 32)), heat, "COVID")
    assert pixels(figure)[1] <= 1400
    hidden = audit.n_clusters - 4
    assert f"{hidden} more cluster(s) not shown" in figure._suptitle.get_text()
    widths = {pixels(plots.eigen_heatmaps_figure("a", *RNG.normal(size=(1, 8, 8)), RNG.normal(size=(k, 8, 8)),
                                                 np.full(k, 0.9 / k), *RNG.normal(size=(2, 8, 8))))[0]
              for k in (1, 3, 8, 30)}
    assert len(widths) == 1 and widths.pop() <= 1100
    roc = roc_figure(roc_curves(many), class_names=many)
    assert max(pixels(roc)) <= 800


def test_gradcam_rows_show_image_map_and_overlay_once_each() -> None:
    images = RNG.random((3, 1, 16, 16))
    heat = RNG.random((3, 16, 16))
    figure = plots.gradcam_overlays(images, heat, ["a", "b", "c"], 0.5)
    panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3 * 3  # not one panel per blend level: each view once
    for row in range(3):
        image, alone, overlay = panels[3 * row: 3 * row + 3]
        assert len(image.images) == len(alone.images) == 1 and len(overlay.images) == 2
        np.testing.assert_allclose(image.images[0].get_array(), images[row, 0])
        np.testing.assert_allclose(alone.images[0].get_array(), heat[row], rtol=1e-6)
        np.testing.assert_allclose(overlay.images[0].get_array(), images[row, 0])  # the X-ray, then the map on it
        assert np.asarray(overlay.images[1].get_alpha()).max() == pytest.approx(0.5)


def test_every_number_on_the_shortcut_figure_is_named_in_its_legend() -> None:
    heat = np.concatenate([RNG.random((10, 8, 8)) * 0.1 + np.eye(8)[None], RNG.random((8, 8, 8)) * 0.1])
    heat[10:, 0, 0] += 1.0  # a corner marker
    masks = np.ones((len(heat), 8, 8))
    masks[:, :, :2] = 0
    figure = shortcut_figure(audit_class(heat, masks=masks), RNG.random((len(heat), 16, 16)), heat, "COVID")
    legend = figure._supxlabel.get_text().replace("\n", " ")
    named = {word for ax in figure.axes for word in re.findall(r"([a-z]+) \d", ax.get_title())} - {"cluster"}
    assert named == {"outside", "band", "corner"}
    assert all(f"{word}:" in legend for word in named)
    assert "in brackets" in legend and "uniform map" in legend


def test_aopc_figure_shows_each_class_with_its_count_and_its_own_aopc() -> None:
    curves, groups = aopc_case()
    figure = perturbation_curves_figure(curves, {"morf": 0.3}, groups=groups, class_names=CLASSES)
    labels = figure.axes[1].get_legend_handles_labels()[1]
    # hand-computed: falling by 0.1 a step over 6 steps -> (0.1 + ... + 0.6) / 7 = 0.3; rising 0.004 a step -> -0.012
    assert labels[0] == "COVID (n=10, AOPC 0.300)"
    assert labels[3] == "Viral Pneumonia (n=10, AOPC -0.012)"
    assert "mean of 40 images" in figure.axes[0].get_legend().get_title().get_text()
    note = figure._supxlabel.get_text()
    assert "higher AOPC is better" in note and "lower AOPC is better" in note


def test_operating_point_title_names_the_set_its_matrix_counts() -> None:
    figure = operating_point_figure(np.array([[70, 3], [1, 16]]), "COVID", 0.2, "no missed case on val",
                                    {"estimate": 0.94, "low": 0.8, "high": 1.0}, {"estimate": 0.96, "low": 0.9, "high": 0.99})
    ax = figure.axes[0]
    title = figure._suptitle.get_text()
    assert "threshold chosen on val (no missed case)" in title and "test set, 90 images" in title
    assert ax.get_ylabel() == "true (test set)" and ax.get_xlabel() == "predicted at p \u2265 0.2"
    assert [t.get_text() for t in ax.texts][2] == "1\n6%"  # the one missed case, shown


def test_captions_wrap_between_folders_and_keep_the_file_name() -> None:
    caption = wrap_caption("Normal/images/Normal-106.png", 16)
    assert caption == "Normal/images/\nNormal-106.png"
    long = wrap_caption("a/b/" + "x" * 50 + "/Viral Pneumonia-1345.png", 20, max_lines=2)
    assert len(long.split("\n")) == 2 and long.endswith("Pneumonia-1345.png")
    assert all(len(line) <= 20 for line in long.split("\n"))
