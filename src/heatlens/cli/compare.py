"""Compare MLflow runs side by side: `heatlens-compare experiment_name=NAME [pair=[A,B]]`.

Hydra app on conf/compare.yaml; the work is in heatlens.report (pure) and heatlens.tracking.query.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from heatlens.cli.exits import run_task
from heatlens.paths import CONFIG_DIR
from heatlens.report.errors import CompareError

if TYPE_CHECKING:
    from heatlens.report import ReportOptions

# pandas (the report) and MLflow (the runs) are imported by `compare`, once Hydra has parsed the command line.

log = logging.getLogger(__name__)


def options_from_config(cfg: DictConfig) -> ReportOptions:
    """ReportOptions from the compare config."""
    from heatlens.report import ReportOptions

    return ReportOptions(
        n_boot=int(cfg.bootstrap.n),
        confidence=float(cfg.bootstrap.confidence),
        seed=int(cfg.bootstrap.seed),
        max_images=int(cfg.max_images),
        heatmap_size=int(cfg.heatmap_size),
        paired_metrics=tuple(cfg.paired_metrics),
    )


def compare(cfg: DictConfig) -> Path:
    """Load the runs, build the report, write it under cfg.out_dir and (optionally) log it; returns the folder."""
    from heatlens.report import build_report, write_report
    from heatlens.report.runs import select_run
    from heatlens.tracking.query import load_runs, log_report_run, resolve_tracking_uri

    run_ids = [str(r) for r in (cfg.run_ids or [])]
    with tempfile.TemporaryDirectory(prefix="heatlens-compare-") as download_dir:
        runs = load_runs(
            cfg.experiment_name,
            run_ids,
            cfg.tracking_uri,
            download_dir,
            include_unfinished=bool(cfg.include_unfinished),
        )
        if not runs:
            what = f"run ids {run_ids}" if run_ids else f"experiment {cfg.experiment_name!r}"
            raise CompareError(f"{what}: no finished run to compare")
        pair = None
        if cfg.pair:
            if len(cfg.pair) != 2:
                raise CompareError(f"pair must name exactly two runs, got {list(cfg.pair)}")
            pair = (select_run(runs, cfg.pair[0]), select_run(runs, cfg.pair[1]))
        report = build_report(runs, options_from_config(cfg), pair=pair, title=str(cfg.title))
    out_dir = write_report(report, cfg.out_dir)
    log.info("report written to %s", out_dir / "report.html")
    if cfg.log_to_mlflow:
        metrics = {f"pair/{r.metric}/diff": r.difference.estimate for r in report.pair}
        metrics.update({f"pair/{r.metric}/p_value": r.p_value for r in report.pair})
        run_id = log_report_run(
            out_dir, runs[0].experiment_id, [r.run_id for r in runs], cfg.tracking_uri, metrics=metrics
        )
        log.info("report logged as MLflow run %s in %s", run_id, resolve_tracking_uri(cfg.tracking_uri))
    return out_dir


@hydra.main(config_path=str(CONFIG_DIR), config_name="compare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_task("compare", _task, cfg)


def _task(cfg: DictConfig) -> None:
    from heatlens.cli.console import quiet_console

    quiet_console()
    compare(cfg)


if __name__ == "__main__":
    main()
