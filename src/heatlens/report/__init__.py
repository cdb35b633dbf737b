"""Comparison report: tables, paired bootstrap, figures, Markdown/HTML (pure: no MLflow here)."""

from heatlens.report.bootstrap import Interval, PairedResult, mean_interval, paired_bootstrap
from heatlens.report.build import Report, ReportOptions, build_report, check_same_test_set, paired_comparison
from heatlens.report.errors import CompareError
from heatlens.report.runs import ExplainArrays, HeatmapSet, RunData, explain_arrays_from_npz
from heatlens.report.writer import write_report

__all__ = [
    "CompareError",
    "ExplainArrays",
    "HeatmapSet",
    "Interval",
    "PairedResult",
    "Report",
    "ReportOptions",
    "RunData",
    "build_report",
    "check_same_test_set",
    "explain_arrays_from_npz",
    "mean_interval",
    "paired_bootstrap",
    "paired_comparison",
    "write_report",
]
