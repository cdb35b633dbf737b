"""`python -m heatlens.bench [--only KEY ...] [--quick] [--out FILE]`: speed ratios measured side by side.

Each benchmark module exposes `run(quick: bool) -> list[BenchResult]`; a ratio above 1 means heatlens
is faster (for `*_vs_forward` keys: the fraction of plain forward throughput reached). The keys of
`OPT_IN` take minutes and run only when named with `--only`. `--out` merges into an existing file:
the measured keys are replaced, the others kept, and `commands` records what produced each key.
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
    "sweep_pruning": "heatlens.bench.sweep",
    "scale": "heatlens.bench.scale",
    "startup": "heatlens.bench.startup",
    "road_vs_forward": "heatlens.bench.metrics",
    "road_vs_pytorch_grad_cam": "heatlens.bench.metrics",
    "insertion_deletion_vs_forward": "heatlens.bench.metrics",
    "insertion_deletion_vs_quantus": "heatlens.bench.metrics",
    "auroc_interval_vs_sklearn": "heatlens.bench.clinical",
}
OPT_IN = ("sweep_pruning", "scale", "startup")
DEFAULT_KEYS = tuple(key for key in BENCHMARK_MODULES if key not in OPT_IN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m heatlens.bench", description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARK_MODULES), help="keys to measure")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test, not for figures)")
    parser.add_argument("--out", type=Path, help="merge the results into this JSON file")
    args = parser.parse_args(argv)

    wanted = set(args.only or DEFAULT_KEYS)
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
        given = argv if argv is not None else sys.argv[1:]
        write_results(args.out, results, " ".join(["python -m heatlens.bench", *given]))
    return 0


def write_results(path: Path, results: list[BenchResult], command: str) -> None:
    """Merge `results` into the JSON at `path`: {key: ratio or {"ratio", ...details}, "commands": {key: command}}."""
    merged = json.loads(path.read_text()) if path.is_file() else {}
    commands = merged.pop("commands", {})
    for r in results:
        ratio = round(r.ratio, 4)
        merged[r.key] = ratio if r.details is None else {"ratio": ratio, **r.details}
        commands[r.key] = command
    path.write_text(json.dumps({**merged, "commands": commands}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
