"""Write a Report as Markdown + HTML + PNG (+ CSV tables) into a folder."""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from heatlens.report.build import Report

FIGURE_TITLES = {
    "aopc_intervals": "AOPC per run with 95 % bootstrap intervals",
    "perturbation_curves": "Perturbation curves (mean over explained test images)",
    "side_by_side": "The same test images explained by every run",
    "heatmap_correlation": "Correlation between runs' average heatmaps, per class",
}


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


def _sections(report: Report) -> list[tuple[str, pd.DataFrame | str, bool]]:
    summary = display_summary(report.summary)
    # Two tables: a single one with every localisation score is too wide to read.
    explanation = [c for c in summary if c.startswith(("aopc_", "loc/", "knn_"))]
    sections: list[tuple[str, pd.DataFrame | str, bool]] = [
        ("Runs: model and classification", summary.drop(columns=explanation), False),
        ("Runs: explanations (AOPC with 95 % bootstrap interval, localisation, k-NN)",
         summary[["run", *explanation]], False),
    ]
    if report.pair:
        first = report.pair[0]
        text = f"Paired bootstrap ({first.n_boot} resamples of the shared test images)"
        text += f", A = {first.run_a}, B = {first.run_b}"
        sections.append((text, pair_table(report), False))
    for class_name, table in report.correlations.items():
        sections.append((f"Average-heatmap correlation: {class_name}", table, True))
    return sections


def write_markdown(report: Report, path: Path) -> None:
    parts = [f"# {report.title}", ""]
    parts += [f"> {note}\n" for note in report.notes]
    for heading, table, index in _sections(report):
        parts += [f"## {heading}", "", markdown_table(table, index=index), ""]
    for name in report.figures:
        parts += [f"## {FIGURE_TITLES.get(name, name)}", "", f"![{name}](figures/{name}.png)", ""]
    path.write_text("\n".join(parts), encoding="utf-8")


def write_html(report: Report, path: Path) -> None:
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    body += [f"<p><em>{html.escape(note)}</em></p>" for note in report.notes]
    for heading, table, index in _sections(report):
        formatted = table.map(_cell) if isinstance(table, pd.DataFrame) else table
        body += [f"<h2>{html.escape(heading)}</h2>", formatted.to_html(index=index, border=0, classes="table")]
    for name in report.figures:
        body += [
            f"<h2>{html.escape(FIGURE_TITLES.get(name, name))}</h2>",
            f'<img src="figures/{name}.png" alt="{name}">',
        ]
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:100%}"
    )
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>"
    page += f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    path.write_text(page, encoding="utf-8")


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write report.md, report.html, figures/*.png and tables/*.csv under out_dir; returns out_dir."""
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    (out_dir / "tables").mkdir(exist_ok=True)
    for name, figure in report.figures.items():
        figure.savefig(out_dir / "figures" / f"{name}.png", dpi=110)
    report.summary.to_csv(out_dir / "tables" / "runs.csv", index=False)
    if report.pair:
        pair_table(report).to_csv(out_dir / "tables" / "paired_bootstrap.csv", index=False)
    for class_name, table in report.correlations.items():
        table.to_csv(out_dir / "tables" / f"heatmap_correlation_{class_name.replace(' ', '_')}.csv")
    write_markdown(report, out_dir / "report.md")
    write_html(report, out_dir / "report.html")
    return out_dir
