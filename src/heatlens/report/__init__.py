"""Comparison report from RunData (read by heatlens.tracking.query): tables, paired bootstrap, figures, Markdown/HTML.
May import pandas, numpy, heatlens.plots, explain and top-level helpers; never MLflow, callbacks or cli.

Members are imported on first use (heatlens.lazy): importing the package costs nothing.
"""

from heatlens.lazy import lazy_members
from heatlens.report.errors import CompareError as CompareError

_MEMBERS = {
    "ExplainArrays": "runs",
    "HeadlineRow": "headline",
    "HeatmapSet": "runs",
    "Interval": "bootstrap",
    "PairedResult": "bootstrap",
    "Report": "build",
    "ReportOptions": "tables",
    "RunData": "runs",
    "ShortcutClusters": "runs",
    "build_report": "build",
    "check_same_test_set": "build",
    "explain_arrays_from_npz": "runs",
    "headline_rows": "headline",
    "mean_interval": "bootstrap",
    "methods_table": "tables",
    "paired_bootstrap": "bootstrap",
    "paired_comparison": "build",
    "run_summary_figure": "summary",
    "runs_by_test_set": "tables",
    "split_fingerprint": "tables",
    "suspect_clusters": "tables",
    "write_report": "writer",
}

__all__ = sorted([*_MEMBERS, "CompareError"])
__getattr__ = lazy_members(__name__, _MEMBERS)
