"""Comparison report from RunData (read by heatlens.tracking.query): tables, paired bootstrap, figures, Markdown/HTML.
May import pandas, numpy, heatlens.plots, explain and top-level helpers; never MLflow, callbacks or cli.
"""

from heatlens.report.bootstrap import Interval, PairedResult, mean_interval, paired_bootstrap
from heatlens.report.build import Report, build_report, check_same_test_set, paired_comparison
from heatlens.report.errors import CompareError
from heatlens.report.headline import HeadlineRow, headline_rows
from heatlens.report.runs import ExplainArrays, HeatmapSet, RunData, ShortcutClusters, explain_arrays_from_npz
from heatlens.report.summary import run_summary_figure
from heatlens.report.tables import ReportOptions, split_fingerprint, suspect_clusters, runs_by_test_set
from heatlens.report.writer import write_report

__all__ = [
    "CompareError",
    "ExplainArrays",
    "HeadlineRow",
    "HeatmapSet",
    "Interval",
    "PairedResult",
    "Report",
    "ReportOptions",
    "RunData",
    "ShortcutClusters",
    "build_report",
    "check_same_test_set",
    "explain_arrays_from_npz",
    "headline_rows",
    "mean_interval",
    "paired_bootstrap",
    "paired_comparison",
    "run_summary_figure",
    "split_fingerprint",
    "suspect_clusters",
    "runs_by_test_set",
    "write_report",
]
