"""The comparison report's explainer table: one row per run and method, ranked within and across runs."""

import numpy as np

from heatlens.report.runs import RunData
from heatlens.report.tables import methods_table


def _run(run_id: str, ranks: dict[str, float], morf: dict[str, float]) -> RunData:
    metrics = {f"xai/method/{m}/mean_rank": r for m, r in ranks.items()}
    metrics |= {f"xai/method/{m}/aopc_morf": v for m, v in morf.items()}
    return RunData(run_id=run_id, name=run_id, metrics=metrics | {"test/acc": 0.9})


def test_methods_are_ranked_by_their_mean_rank_over_runs():
    runs = [_run("a" * 8, {"gradcam": 1.0, "xrai": 2.0}, {"gradcam": 0.3, "xrai": 0.1}),
            _run("b" * 8, {"gradcam": 2.0, "xrai": 1.5, "saliency": 1.0}, {"gradcam": 0.2}),
            _run("c" * 8, {}, {})]  # a run without the explainers step adds no row
    table = methods_table(runs)
    # mean ranks over runs: gradcam 1.5, xrai 1.75, saliency 1.0
    assert table[["method", "cross_run_rank"]].drop_duplicates().values.tolist() == [
        ["saliency", 1.0], ["gradcam", 2.0], ["xrai", 3.0]]
    assert len(table) == 5 and list(table.columns) == ["run", "method", "mean_rank", "cross_run_rank", "aopc_morf"]
    row = table[(table.method == "xrai") & (table.run == runs[1].label)].iloc[0]
    assert row.mean_rank == 1.5 and np.isnan(row.aopc_morf)


def test_no_explainers_step_gives_an_empty_table():
    assert methods_table([_run("d" * 8, {}, {})]).empty
