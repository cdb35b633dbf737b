"""Report building on RunData made in memory: tables, pairing rules, heatmap correlation, writing."""

from __future__ import annotations

import numpy as np
import pytest
from fake_runs import CLASSES, ids_hash, make_fake_run, reference_metrics

from heatlens.report import (
    CompareError,
    ExplainArrays,
    HeatmapSet,
    ReportOptions,
    RunData,
    ShortcutClusters,
    build_report,
    explain_arrays_from_npz,
    paired_comparison,
    runs_by_test_set,
)
from heatlens.report.build import heatmap_correlations, mean_curves, side_by_side, summary_table
from heatlens.report.writer import correlation_pairs, shortcut_table
from heatlens.report.runs import select_run
from heatlens.report.writer import write_report

OPTIONS = ReportOptions(n_boot=300, max_images=4, heatmap_size=16)


def run_data(name: str, seed: int, **changes) -> RunData:
    fake = make_fake_run(seed)
    for key, value in changes.items():
        setattr(fake, key, value)
    arrays = ExplainArrays(
        ids=fake.ids,
        labels=fake.labels,
        preds=fake.preds,
        heatmaps=HeatmapSet(fake.ids, fake.maps, fake.labels, fake.preds),
        curves=fake.curves,
        curve_ids={o: fake.ids for o in fake.curves},
        class_names=CLASSES,
    )
    return RunData(
        f"{name}-id-0123456789", name, metrics=reference_metrics(fake), test_hash=ids_hash(fake.ids), arrays=arrays
    )


def test_summary_row_holds_logged_metrics_and_aopc_from_curves():
    run = run_data("a", 0)
    row = summary_table([run], OPTIONS).iloc[0]
    assert row["acc"] == run.metrics["test/acc"]
    assert row["recall/Viral Pneumonia"] == run.metrics["test/recall/Viral Pneumonia"]
    assert row["loc/lesion/pointing_game"] == 0.75
    for order in ("morf", "lerf", "random"):
        # Recomputed from the stored curves, it equals the logged metric and sits inside its interval.
        assert row[f"aopc_{order}"] == pytest.approx(run.metrics[f"xai/aopc_{order}"])
        assert row[f"aopc_{order}_low"] < row[f"aopc_{order}"] < row[f"aopc_{order}_high"]
    assert row["aopc_morf"] > row["aopc_random"] > row["aopc_lerf"]


def test_pairing_a_run_with_itself_gives_zero_differences():
    run = run_data("a", 0)
    twin = run_data("b", 0)
    results = paired_comparison(run, twin, OPTIONS)
    assert {r.metric for r in results} == set(OPTIONS.paired_metrics)
    for result in results:
        assert result.difference.estimate == 0.0
        assert result.p_value == 1.0


def test_planted_aopc_shift_is_recovered_between_runs():
    base = run_data("a", 0)
    curves = {o: c.copy() for o, c in base.arrays.curves.items()}
    curves["morf"][:, 1:] -= 0.2  # every perturbed score drops 0.2 more: AOPC rises by 0.2 * L / (L + 1)
    shifted = run_data("b", 0, curves=curves)
    steps = curves["morf"].shape[1]
    planted = 0.2 * (steps - 1) / steps
    result = {r.metric: r for r in paired_comparison(shifted, base, OPTIONS)}["aopc_morf"]
    assert result.difference.estimate == pytest.approx(planted)
    assert result.difference.low <= planted + 1e-9 and planted - 1e-9 <= result.difference.high
    assert result.p_value < 0.01


def test_runs_on_different_test_sets_are_refused():
    a = run_data("a", 0)
    b = run_data("b", 1)
    b.test_hash = "f" * 64
    with pytest.raises(CompareError, match="test sets differ") as error:
        paired_comparison(a, b, OPTIONS)
    assert a.test_hash[:12] in str(error.value) and "ffffffffffff" in str(error.value)


def test_heatmap_correlation_known_answers():
    a = run_data("a", 0)
    maps = a.arrays.heatmaps.maps
    scaled = run_data("scaled", 0, maps=3.0 * maps + 1.0)
    flipped = run_data("flipped", 0, maps=-maps)
    # Same maps stored at twice the feature resolution (nearest-neighbour copy): still strongly correlated.
    finer = run_data("finer", 0, maps=maps.repeat(2, axis=2).repeat(2, axis=3))
    tables = heatmap_correlations([a, scaled, flipped, finer], OPTIONS)
    assert list(tables) == CLASSES
    for table in tables.values():
        assert table.iloc[0, 1] == pytest.approx(1.0, abs=1e-5)
        assert table.iloc[0, 2] == pytest.approx(-1.0, abs=1e-5)
        assert table.iloc[0, 3] > 0.9


def test_select_run_by_name_prefix_and_clear_error():
    runs = [run_data("alpha", 0), run_data("beta", 0)]
    assert select_run(runs, "beta").name == "beta"
    assert select_run(runs, "alpha-id-01").name == "alpha"
    with pytest.raises(CompareError, match="'gamma' matches no run"):
        select_run(runs, "gamma")


def test_written_report_has_tables_figures_and_pair(tmp_path):
    runs = [run_data("a", 0), run_data("b", 0, preds=np.zeros(40, dtype=np.int64)), run_data("c", 2)]
    report = build_report(runs, OPTIONS, pair=(runs[0], runs[1]))
    out = write_report(report, tmp_path / "report")
    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for name in ("aopc_intervals", "perturbation_curves", "side_by_side", "heatmap_correlation"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert f"figures/{name}.png" in markdown and f"figures/{name}.png" in html
    assert "Paired bootstrap" in markdown and "recall_macro" in html
    assert "Viral Pneumonia" in markdown
    side = report.figures["side_by_side"]
    panels = [ax for ax in side.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3 * OPTIONS.max_images and len(side.axes) == len(panels) + 1  # one shared colour bar
    # Round-robin over classes: the first four examples cover all four classes.
    titles = [ax.get_title() for ax in panels[: OPTIONS.max_images]]
    assert {t.split("\n")[1] for t in titles} == set(CLASSES)
    # Run "b" predicts one class everywhere: the headline table gains a warning column for it.
    assert "| b (b-id-0) | predicts 1 of 4 classes on the test set (only COVID) |" in markdown
    # Narrow tables: no Markdown table is wider than run, warning, 3 scores and one recall per class.
    widths = [line.count("|") - 1 for line in markdown.splitlines() if line.startswith("| ")]
    assert max(widths) <= 5 + len(CLASSES)


def test_unscored_images_are_left_out_of_aopc_pairs():
    """NaN curve rows (images a run did not score, e.g. misclassified) drop out; pairs use images both scored."""
    base = run_data("a", 0)
    curves = {o: c.copy() for o, c in base.arrays.curves.items()}
    curves["morf"][:10] = np.nan
    partial = run_data("b", 0, curves=curves)
    row = summary_table([partial], OPTIONS).iloc[0]
    assert row["aopc_morf"] == pytest.approx(np.mean((curves["morf"][10:, :1] - curves["morf"][10:]).mean(axis=1)))
    result = {r.metric: r for r in paired_comparison(partial, base, OPTIONS)}["aopc_morf"]
    assert result.n_images == 30
    assert result.difference.estimate == pytest.approx(0.0)
    assert mean_curves([partial])["morf"][partial.label] == pytest.approx(curves["morf"][10:].mean(axis=0))


def test_npz_files_are_merged_by_sample_id_not_position():
    """Predictions for the whole test set, heatmaps for a shuffled subset: rows are matched by id."""
    ids = np.array([f"img{i}" for i in range(6)])
    labels = np.array([0, 1, 2, 0, 1, 2])
    probs = np.eye(3)[[0, 1, 1, 0, 2, 2]]
    subset = np.array([4, 1, 3])
    files = {
        "test_predictions": {"ids": ids, "labels": labels, "probs": probs, "class_names": np.array(["a", "b", "c"])},
        "gradcam": {
            "ids": ids[subset],
            "labels": labels[subset],
            "predictions": probs[subset].argmax(1),
            "heatmaps": np.arange(3 * 3 * 4, dtype=np.float16).reshape(3, 3, 2, 2),
        },
        "aopc": {"ids": ids[::-1], "curves_morf": np.tile(np.arange(6.0)[::-1, None], (1, 3))},
    }
    arrays = explain_arrays_from_npz(files)
    assert list(arrays.ids) == list(ids)
    assert list(arrays.preds) == [0, 1, 1, 0, 2, 2]
    assert arrays.class_names == ["a", "b", "c"]
    assert list(arrays.heatmaps.ids) == ["img4", "img1", "img3"]
    assert arrays.heatmaps.maps[arrays.heatmaps.rows_for(np.array(["img1"]))][0, 0, 0, 0] == 12
    run = RunData("r" * 8, "r", arrays=arrays)
    curve_ids, values = run.aopc_values("morf")
    assert list(curve_ids) == list(ids[::-1])
    assert np.all(values == 0)


def test_side_by_side_draws_each_map_over_its_thumbnail_and_says_when_a_map_is_empty():
    a, b = run_data("a", 0), run_data("b", 0)
    thumbnails = np.broadcast_to(np.arange(40, dtype=np.uint8)[:, None, None], (40, 8, 8)).copy()
    a.arrays.heatmaps.thumbnails = thumbnails
    b.arrays.heatmaps.maps = -np.abs(b.arrays.heatmaps.maps)  # no positive relevance anywhere
    figure = side_by_side([a, b], OPTIONS)
    panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    first_row, second_row = panels[: OPTIONS.max_images], panels[OPTIONS.max_images:]
    rows = a.arrays.heatmaps.rows_for(np.array([f"{c}/images/img_{i:03d}.png" for c, i in
                                                zip(CLASSES, range(4))]))
    for ax, row in zip(first_row, rows):
        background, heat = ax.images
        np.testing.assert_allclose(background.get_array(), thumbnails[row] / 255.0)  # the run's own image
        assert heat.get_array().shape == (8, 8) and float(heat.get_array().max()) == pytest.approx(1.0)
    for ax in second_row:
        assert len(ax.images) == 1 and "no positive" in ax.texts[0].get_text()


def test_shortcut_columns_and_suspect_clusters_are_reported():
    flagged, clean, unaudited = run_data("flagged", 0), run_data("clean", 1), run_data("plain", 2)
    for run, flag in ((flagged, 1.0), (clean, 0.0)):
        run.metrics.update({"xai/shortcut/COVID/flag": flag, "xai/shortcut/COVID/outside_mass": 0.4 * flag + 0.1,
                            "xai/shortcut/COVID/border_mass": 0.25, "xai/shortcut/Normal/flag": 0.0})
    ids = flagged.arrays.ids
    cluster = np.where(np.arange(40) < 20, 0, 1)
    # COVID images (label 0) of cluster 1 are suspect: rows 20, 24, ..., 36.
    flagged.arrays.shortcut = ShortcutClusters(ids, cluster, (flagged.arrays.labels == 0) & (cluster == 1))
    report = build_report([flagged, clean, unaudited], OPTIONS)
    summary = report.summary.set_index("run")
    assert summary.loc[flagged.label, "shortcut/COVID/flag"] == 1.0
    assert np.isnan(summary.loc[unaudited.label, "shortcut/COVID/flag"])
    table = shortcut_table(report.summary).set_index("run")
    assert table.loc[flagged.label, "COVID"] == "FLAGGED (outside 0.500, border 0.250)"
    assert table.loc[clean.label, "COVID"] == "ok (outside 0.100, border 0.250)"
    assert table.loc[clean.label, "Normal"] == "ok" and table.loc[unaudited.label, "COVID"] == "–"
    clusters = report.suspect_clusters
    assert clusters.to_dict("records") == [{
        "run": flagged.label, "class": "COVID", "cluster": 1, "images": 5,
        "examples": "img_020.png, img_024.png, img_028.png, …",
    }]


def test_runs_are_grouped_by_test_set_largest_group_first():
    a, b, c = run_data("a", 0), run_data("b", 1), run_data("c", 2)
    c.test_hash = "e" * 64
    groups = runs_by_test_set([c, a, b])
    assert list(groups) == [a.test_hash, "e" * 64]
    assert [r.name for r in groups[a.test_hash]] == ["a", "b"]


def test_correlation_pairs_list_each_pair_of_runs_once():
    runs = [run_data("a", 0), run_data("b", 0), run_data("c", 0)]
    runs[2].arrays.heatmaps.maps = -runs[2].arrays.heatmaps.maps
    pairs = correlation_pairs(heatmap_correlations(runs, OPTIONS)).set_index("runs")
    assert list(pairs.index) == [f"{runs[0].label} vs {runs[1].label}", f"{runs[0].label} vs {runs[2].label}",
                                 f"{runs[1].label} vs {runs[2].label}"]
    assert pairs.loc[f"{runs[0].label} vs {runs[1].label}"].to_numpy() == pytest.approx(1.0, abs=1e-5)
    assert pairs.loc[f"{runs[0].label} vs {runs[2].label}"].to_numpy() == pytest.approx(-1.0, abs=1e-5)


def test_shortcut_arrays_are_read_with_labels_from_the_file():
    files = {
        "test_predictions": {"ids": np.array(["x", "y"]), "labels": np.array([0, 1]), "probs": np.eye(2)},
        "shortcut": {"ids": np.array(["y", "x"]), "cluster": np.array([2, 0]), "suspect": np.array([1, 0]),
                     "labels": np.array([1, 0])},
    }
    shortcut = explain_arrays_from_npz(files).shortcut
    assert list(shortcut.ids) == ["y", "x"] and list(shortcut.cluster) == [2, 0]
    assert shortcut.suspect.dtype == bool and list(shortcut.suspect) == [True, False]
    assert list(shortcut.labels) == [1, 0]
