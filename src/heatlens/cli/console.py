"""What the entry points print: library chatter filtered out, and the run's headline numbers at the end.

`quiet_console()` is called by the entry points (not at import of the library, so code importing
heatlens keeps every warning its libraries give).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

from heatlens.report.headline import headline_rows

# Warnings raised inside libraries that the user can neither act on nor needs to know about.
IGNORED_WARNINGS = (
    # torch 2.15 deprecates LeafSpec; Lightning's own _pytree helper still uses it on every batch.
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
)
# Lightning's advertisements for its cloud products, logged at INFO on rank 0.
TIP_PREFIX = "\N{ELECTRIC LIGHT BULB} Tip:"
TIP_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
# INFO lines that describe the libraries' internals, not the run: openTSNE repeats "precomputed
# affinities provided" per call; MLflow announces creating its database tables and validating the
# logged model's input example; PAIR's saliency library (XRAI) logs two INFO lines per image.
QUIET_LOGGERS = ("openTSNE", "mlflow.store.db.utils", "alembic.runtime.migration", "mlflow.pyfunc", "saliency")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


_TIP_FILTER = _DropTips()


def quiet_console() -> None:
    """Filter the library warnings, tips and INFO lines that say nothing to the user. Call it first in
    the Hydra task function (after Hydra has set up logging); calling it again changes nothing."""
    for category, message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in TIP_LOGGERS:
        logger = logging.getLogger(name)
        if _TIP_FILTER not in logger.filters:
            logger.addFilter(_TIP_FILTER)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def headline_table(metrics: Mapping[str, float], title: str = "Headline numbers") -> Table | None:
    """Rich table of the run's headline numbers (heatlens.report.headline), 3 decimals; None when the
    run logged none of them."""
    rows = headline_rows(metrics)
    if not rows:
        return None
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    for row in rows:
        table.add_row(row.label, row.formatted(), f"vs {row.reference}" if row.reference else "")
    return table


def print_headline(metrics: Mapping[str, float], console: Console | None = None) -> None:
    """Print headline_table(metrics) (nothing when it is empty), e.g. just above the MLflow link."""
    table = headline_table(metrics)
    if table is not None:
        (console or Console()).print(table)
