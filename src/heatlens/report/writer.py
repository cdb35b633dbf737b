"""Write a Report as Markdown + HTML + PNG (+ CSV tables) into a folder.

The run table is split by topic (model, classification, faithfulness, one table per mask kind,
shortcut audit) so every table fits a laptop screen and reads in plain Markdown too.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from heatlens.data.atomic import write_text_atomic, write_with
from heatlens.report.build import Report

FIGURE_TITLES = {
    "aopc_intervals": "AOPC per run with 95 % bootstrap intervals",
    "perturbation_curves": "Perturbation curves (mean over explained test images)",
    "side_by_side": "The same test images explained by every run",
    "heatmap_correlation": "Correlation between runs' average heatmaps, per class",
}
COLUMN_NAMES = {
    "test_set": "test set",
    "size_mb": "size MB",
    "acc": "accuracy",
    "recall_macro": "macro recall",
    "f1_macro": "macro F1",
    "aopc_morf": "AOPC MoRF",
    "aopc_lerf": "AOPC LeRF",
    "aopc_random": "AOPC random",
    "knn_acc_embedding": "k-NN embedding",
    "knn_acc_raw": "k-NN raw pixels",
}
SHORTCUT_PREFIX = "shortcut/"
# Relevance mass beside its chance level (a uniform map), then the other scores.
LOCALISATION_ORDER = ("relevance_mass_accuracy", "uniform_relevance_mass_accuracy", "pointing_game",
                      "relevance_rank_accuracy", "top_k_intersection", "top_k_iou", "auc")


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer() and abs(value) >= 100:
            return f"{int(value):,}"
        return f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.3f}"
    return str(value)


def display_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary with AOPC shown as 'estimate [low, high]' and the raw bound columns folded in."""
    shown = summary.drop(columns=["run_id"])
    for column in ("params", "trainable", "depth"):
        shown[column] = [_cell(v) if math.isnan(v) else f"{int(v):,}" for v in summary[column]]
    for column in [c for c in summary if f"{c}_low" in summary]:
        low, high = summary[f"{column}_low"], summary[f"{column}_high"]
        shown[column] = [
            _cell(v) if math.isnan(lo) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
            for v, lo, hi in zip(summary[column], low, high)
        ]
        shown = shown.drop(columns=[f"{column}_low", f"{column}_high"])
    return shown


def shortcut_table(summary: pd.DataFrame) -> pd.DataFrame | None:
    """One column per class: 'FLAGGED' or 'ok', with the outside / border relevance mass; None without audit."""
    flags = [c for c in summary if c.startswith(SHORTCUT_PREFIX) and c.endswith("/flag")]
    if not flags:
        return None
    table = summary[["run"]].copy()
    for flag in flags:
        class_name = flag.removeprefix(SHORTCUT_PREFIX).removesuffix("/flag")
        cells = []
        for _, row in summary.iterrows():
            if math.isnan(row[flag]):
                cells.append("–")
                continue
            masses = [f"{name} {_cell(row[column])}" for name, column in
                      (("outside", f"{SHORTCUT_PREFIX}{class_name}/outside_mass"),
                       ("border", f"{SHORTCUT_PREFIX}{class_name}/border_mass"))
                      if column in row and not math.isnan(row[column])]
            verdict = "FLAGGED" if row[flag] >= 0.5 else "ok"
            cells.append(verdict + (f" ({', '.join(masses)})" if masses else ""))
        table[class_name] = cells
    return table


def topic_tables(report: Report) -> list[tuple[str, pd.DataFrame]]:
    summary = display_summary(report.summary)
    named = summary.rename(columns=COLUMN_NAMES)
    recalls = [c for c in summary if c.startswith("recall/")]
    # A model that predicts fewer classes than the test set holds is named beside its numbers.
    warning = ["warning"] if "warning" in named and named["warning"].astype(bool).any() else []
    tables = [
        ("Runs: model", named[["run", "backbone", "test set", "params", "trainable", "size MB", "depth"]]),
        ("Runs: classification on the test set",
         named[["run", *warning, "accuracy", "macro recall", "macro F1", *recalls]]
         .rename(columns={c: f"recall {c.removeprefix('recall/')}" for c in recalls})),
    ]
    findings = [c for c in summary if c.startswith("auroc/")]  # multi-label runs only (tables.summary_table)
    if findings:
        tables.append(("Runs: multi-label, AUROC per finding on the test set",
                       summary[["run", "auroc_macro", "ap_macro", *findings]]))
    faithfulness = [COLUMN_NAMES[c] for c in ("aopc_morf", "aopc_lerf", "aopc_random", "knn_acc_embedding",
                                              "knn_acc_raw")]
    tables.append(("Runs: explanations (AOPC with 95 % bootstrap interval; k-NN accuracy)",
                   named[["run", *faithfulness]]))
    kinds = sorted({c.split("/")[1] for c in summary if c.startswith("loc/")})
    for kind in kinds:
        prefix = f"loc/{kind}/"
        columns = sorted((c for c in summary if c.startswith(prefix)),
                         key=lambda c: LOCALISATION_ORDER.index(c.removeprefix(prefix))
                         if c.removeprefix(prefix) in LOCALISATION_ORDER else len(LOCALISATION_ORDER))
        tables.append((f"Runs: localisation in the {kind} masks",
                       summary[["run", *columns]].rename(columns={c: c.removeprefix(prefix).replace("_", " ")
                                                                 for c in columns})))
    shortcut = shortcut_table(report.summary)
    if shortcut is not None:
        tables.append(("Runs: shortcut audit per class (relevance mass outside the anatomy / in the border band)",
                       shortcut))
    if report.suspect_clusters is not None and len(report.suspect_clusters):
        tables.append(("Shortcut audit: suspect clusters", report.suspect_clusters))
    if report.methods is not None and len(report.methods):
        tables.append(("Explainers per run (rank 1 = best; cross_run_rank: over all runs)", report.methods))
    return tables


def pair_table(report: Report) -> pd.DataFrame:
    """One row per paired metric: A, B, difference with interval, p-value."""
    return pd.DataFrame(
        [
            {
                "metric": r.metric,
                "A": r.value_a,
                "B": r.value_b,
                "A - B": r.difference.estimate,
                "CI low": r.difference.low,
                "CI high": r.difference.high,
                "p-value": r.p_value,
                "images": r.n_images,
            }
            for r in report.pair
        ]
    )


def markdown_table(table: pd.DataFrame, index: bool = False) -> str:
    """GitHub Markdown table (no tabulate dependency)."""
    frame = table.rename_axis("").reset_index() if index else table
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _sections(report: Report) -> list[tuple[str, pd.DataFrame, bool]]:
    sections = [(heading, table, False) for heading, table in topic_tables(report)]
    if report.pair:
        first = report.pair[0]
        text = f"Paired bootstrap ({first.n_boot} resamples of the shared test images)"
        text += f", A = {first.run_a}, B = {first.run_b}"
        sections.append((text, pair_table(report), False))
    if report.correlations:
        sections.append(("Correlation between runs' average heatmaps, per class (Pearson r)",
                         correlation_pairs(report.correlations), False))
    return sections


def correlation_pairs(correlations: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per pair of runs, one column per class: the run x run matrices, each pair once."""
    labels = list(next(iter(correlations.values())).index)
    rows = []
    for i, first in enumerate(labels):
        for j in range(i + 1, len(labels)):
            row = {"runs": f"{first} vs {labels[j]}"}
            row.update({name: table.iloc[i, j] for name, table in correlations.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def write_markdown(report: Report, path: Path) -> None:
    parts = [f"# {report.title}", ""]
    parts += [f"> {note}\n" for note in report.notes]
    for heading, table, index in _sections(report):
        parts += [f"## {heading}", "", markdown_table(table, index=index), ""]
    for name in report.figures:
        parts += [f"## {FIGURE_TITLES.get(name, name)}", "", f"![{name}](figures/{name}.png)", ""]
    write_text_atomic(path, "\n".join(parts), "report")


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.2em auto;max-width:1320px;padding:0 1em;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.1em;margin-top:1.6em}"
    ".scroll{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;font-size:85%}"
    "th{background:#f3f3f3;white-space:normal;max-width:11em;vertical-align:bottom}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "td:first-child,th:first-child{text-align:left;max-width:22em;overflow-wrap:anywhere}"
    "td{white-space:nowrap}td:first-child{white-space:normal}"
    ".note{color:#555;font-style:italic}"
    "img{max-width:100%;height:auto;display:block}"
)


def write_html(report: Report, path: Path) -> None:
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    body += [f"<p class='note'>{html.escape(note)}</p>" for note in report.notes]
    for heading, table, index in _sections(report):
        formatted = table.map(_cell)
        body += [f"<h2>{html.escape(heading)}</h2>",
                 f"<div class='scroll'>{formatted.to_html(index=index, border=0, classes='table')}</div>"]
    for name in report.figures:
        body += [
            f"<h2>{html.escape(FIGURE_TITLES.get(name, name))}</h2>",
            f'<img src="figures/{name}.png" alt="{name}">',
        ]
    page = "<!doctype html><html><head><meta charset='utf-8'>"
    page += "<meta name='viewport' content='width=device-width, initial-scale=1'>"
    page += f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    write_text_atomic(path, page, "report")


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write report.md, report.html, figures/*.png and tables/*.csv under out_dir; returns out_dir."""
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    (out_dir / "tables").mkdir(exist_ok=True)
    for name, figure in report.figures.items():
        write_with(out_dir / "figures" / f"{name}.png", lambda tmp: figure.savefig(tmp, dpi=100), "report figure")
    report.summary.to_csv(out_dir / "tables" / "runs.csv", index=False)
    if report.pair:
        pair_table(report).to_csv(out_dir / "tables" / "paired_bootstrap.csv", index=False)
    if report.suspect_clusters is not None and len(report.suspect_clusters):
        report.suspect_clusters.to_csv(out_dir / "tables" / "suspect_clusters.csv", index=False)
    if report.methods is not None and len(report.methods):
        report.methods.to_csv(out_dir / "tables" / "explainers.csv", index=False)
    for class_name, table in report.correlations.items():
        table.to_csv(out_dir / "tables" / f"heatmap_correlation_{class_name.replace(' ', '_')}.csv")
    write_markdown(report, out_dir / "report.md")
    write_html(report, out_dir / "report.html")
    return out_dir
