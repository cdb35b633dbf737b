"""The metric rows of the bench in smoke mode: every key measured, finite positive ratios, --out merging."""

import json
import math

from heatlens.bench.__main__ import main

KEYS = ("road_vs_forward", "road_vs_pytorch_grad_cam", "insertion_deletion_vs_forward",
        "insertion_deletion_vs_quantus")


def test_quick_metric_rows_merge_into_results(tmp_path):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"cache_vs_png": 5.0, "commands": {"cache_vs_png": "earlier"}}))
    assert main(["--only", *KEYS, "--quick", "--out", str(out)]) == 0
    merged = json.loads(out.read_text())
    commands = merged.pop("commands")
    assert merged.pop("cache_vs_png") == 5.0 and commands.pop("cache_vs_png") == "earlier"
    assert set(merged) == set(KEYS) == set(commands)
    assert all(math.isfinite(r) and r > 0 for r in merged.values()), merged
    assert commands["road_vs_forward"].startswith("python -m heatlens.bench --only road_vs_forward")
