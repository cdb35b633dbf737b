"""`python -m heatlens.bench --quick` runs every benchmark and writes the ratio JSON the issues name."""

import json
import math
import os
import subprocess
import sys

import pytest

from heatlens.bench.__main__ import DEFAULT_KEYS
from heatlens.paths import PROJECT_ROOT


@pytest.mark.slow
def test_quick_bench_writes_every_ratio(tmp_path):
    out = tmp_path / "results.json"
    env = {**os.environ, "HEATLENS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "heatlens.bench", "--quick", "--out", str(out)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ratios = json.loads(out.read_text())
    commands = ratios.pop("commands")
    assert set(ratios) == set(DEFAULT_KEYS) == set(commands)
    assert all(math.isfinite(r) and r > 0 for r in ratios.values()), ratios
    assert commands["cache_vs_png"] == f"python -m heatlens.bench --quick --out {out}"
    assert "cache_vs_png" in result.stdout
