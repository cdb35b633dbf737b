"""The benchmark tables of docs/benchmarks.md carry the numbers of bench/results.json and the command
behind each key."""

from __future__ import annotations

import json
from pathlib import Path

import bench_tables

ROOT = Path(__file__).resolve().parents[2]
RESULTS = json.loads((ROOT / "bench" / "results.json").read_text())


def rows(table: str) -> dict[str, list[str]]:
    out = {}
    for line in table.splitlines()[2:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = cells
    return out


def test_ratio_rows_are_the_json_ratios_with_their_commands() -> None:
    table = rows(bench_tables.ratios(RESULTS))
    assert set(table) == {f"`{key}`" for key in bench_tables.RATIO_ROWS}
    for key in bench_tables.RATIO_ROWS:
        cells = table[f"`{key}`"]
        assert float(cells[1]) == round(RESULTS[key], 2)
        assert cells[-1] == f"`{RESULTS['commands'][key]}`"


def test_scale_rows_follow_from_the_measured_phases() -> None:
    scale = RESULTS["scale"]
    small, large = (scale["sizes"][str(n)] for n in scale["images"])
    table = rows(bench_tables.scale(RESULTS))
    aopc = table["&nbsp;&nbsp;explain: aopc"]
    small_s, large_s = small["phases"]["explain"]["steps_s"]["aopc"], large["phases"]["explain"]["steps_s"]["aopc"]
    assert aopc[1:4] == [f"{small_s:.1f} s", f"{large_s:.1f} s", f"{large_s / small_s:.2f}"]
    epoch = next(cells for name, cells in table.items() if name.startswith("train_epoch"))
    assert epoch[5] == f"{large['phases']['train_epoch']['pss_mib']:,.0f}"
    assert "**1,761**" in table["**peak of the whole run**"]  # the peak docs/benchmarks.md discusses


def test_sweep_pruning_row_states_the_gap_against_the_noise() -> None:
    (cells,) = rows(bench_tables.sweep_pruning(RESULTS)).values()
    pruning = RESULTS["sweep_pruning"]
    assert cells[1] == f"{pruning['ratio']:.2f}"
    assert f"{pruning['epochs_pruned']} epochs" in cells[3] and f"{pruning['epochs_unpruned']} epochs" in cells[4]
