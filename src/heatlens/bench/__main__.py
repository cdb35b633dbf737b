"""`python -m heatlens.bench [--only KEY ...] [--quick] [--out FILE]`: speed ratios measured side by side.

Each benchmark module exposes `run(quick: bool) -> list[BenchResult]`; a ratio above 1 means heatlens
is faster (for `*_vs_forward` keys: the fraction of plain forward throughput reached).
"""

import argparse
import importlib
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from heatlens.bench.common import BenchResult

# key -> module that measures it; one module may report several keys.
BENCHMARK_MODULES = {
    "cache_vs_png": "heatlens.bench.data",
    "gradcam_vs_forward": "heatlens.bench.explain",
    "gradcam_vs_pytorch_grad_cam": "heatlens.bench.explain",
    "aopc_vs_forward": "heatlens.bench.explain",
    "tsne_vs_sklearn": "heatlens.bench.explain",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m heatlens.bench", description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARK_MODULES), help="keys to measure")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test, not for figures)")
    parser.add_argument("--out", type=Path, help="write {key: ratio} as JSON here")
    args = parser.parse_args(argv)

    wanted = set(args.only or BENCHMARK_MODULES)
    modules = list(dict.fromkeys(BENCHMARK_MODULES[key] for key in BENCHMARK_MODULES if key in wanted))
    results: list[BenchResult] = []
    for name in modules:
        module = importlib.import_module(name)
        results.extend(r for r in module.run(quick=args.quick) if r.key in wanted)

    table = Table(title="heatlens benchmarks (ratio > 1: heatlens faster)")
    for column in ("key", "ratio", "heatlens", "reference", "setting"):
        table.add_column(column)
    for r in results:
        table.add_row(r.key, f"{r.ratio:.2f}", r.ours, r.reference, r.setting)
    Console(width=160).print(table)
    if args.out:
        args.out.write_text(json.dumps({r.key: round(r.ratio, 4) for r in results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
