"""`python -m heatlens.bench --only startup`: what a command costs before it does anything.

CPU seconds (user + system, of the command and the processes it waited for) of, in fresh interpreters:
`python -c "import torch"` (the reference), `python train.py --help`, a config error
(`python train.py optimizer.lr=abc`) and the default run up to its first training step (a callback
given on the command line records the CPU time at the first batch and ends the process). CPU seconds,
not wall time: the bench must hold on a shared, loaded machine. Best of `repeats` runs of each.
Ratio: the torch import over the config error (> 1: a typo costs less than importing torch).
`import torch, lightning, mlflow` is measured too: the floor of any training run (Lightning's own
import pulls torch._dynamo, torchmetrics, scipy.signal and matplotlib), beside the first step.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from heatlens.bench.common import BenchResult
from heatlens.paths import source_checkout

# Where stop_at_first_step's callback writes the CPU seconds it measured.
CPU_FILE_ENV = "HEATLENS_BENCH_CPU_FILE"
STOP_CALLBACK = "+callbacks.bench_stop._target_=heatlens.bench.startup.stop_at_first_step"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(args: list[str], env: dict[str, str], cwd: Path, expect: int) -> float:
    """CPU seconds of `args` run to its end; the exit code must be `expect` (else the bench measured nothing)."""
    before = _child_cpu()
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    spent = _child_cpu() - before
    if result.returncode != expect:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}, expected {expect}:\n{result.stderr[-2000:]}")
    return spent


def first_step_cpu(train_py: Path, env: dict[str, str], cwd: Path, out: Path) -> float:
    """CPU seconds of the default run to its first training batch (measured inside the run)."""
    cpu_seconds([sys.executable, str(train_py), STOP_CALLBACK], {**env, CPU_FILE_ENV: str(out)}, cwd, expect=0)
    return float(out.read_text())


def stop_at_first_step():
    """A Lightning callback (built through Hydra's `_target_`, so this module stays light): at the first
    training batch it writes the process's CPU seconds so far to $HEATLENS_BENCH_CPU_FILE and exits."""
    import lightning as L

    class StopAtFirstStep(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            own = resource.getrusage(resource.RUSAGE_SELF)
            Path(os.environ[CPU_FILE_ENV]).write_text(str(own.ru_utime + own.ru_stime + _child_cpu()))
            os._exit(0)  # the measurement is taken: nothing after the first step is benchmarked

    return StopAtFirstStep()


def run(quick: bool, repeats: int | None = None) -> list[BenchResult]:
    checkout = source_checkout()
    if checkout is None:
        raise RuntimeError("the startup bench times `python train.py`: run it from a source checkout")
    train_py = checkout / "train.py"
    repeats = repeats or (1 if quick else 3)
    with tempfile.TemporaryDirectory(prefix="heatlens-bench-startup-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "HEATLENS_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
               "HEATLENS_CACHE": os.environ.get("HEATLENS_CACHE", str(home / "cache"))}
        python = sys.executable
        commands = {
            "torch_import": ([python, "-c", "import torch"], 0),
            "training_imports": ([python, "-c", "import torch, lightning, mlflow"], 0),
            "help": ([python, str(train_py), "--help"], 0),
            "config_error": ([python, str(train_py), "optimizer.lr=abc"], 2),
        }
        best = {name: min(cpu_seconds(args, env, home, expect) for _ in range(repeats))
                for name, (args, expect) in commands.items()}
        leftovers = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
        first_step_cpu(train_py, env, home, home / "warm.txt")  # untimed: builds the phantom cache
        best["first_step"] = min(first_step_cpu(train_py, env, home, home / f"cpu{i}.txt") for i in range(repeats))
    details = {f"{name}_cpu_s": round(value, 2) for name, value in best.items()}
    details |= {"help_vs_torch": round(best["help"] / best["torch_import"], 3),
                "config_error_vs_torch": round(best["config_error"] / best["torch_import"], 3),
                "first_step_vs_training_imports": round(best["first_step"] / best["training_imports"], 3),
                "config_error_leftovers": leftovers, "repeats": repeats}
    return [BenchResult(
        key="startup",
        ratio=best["torch_import"] / best["config_error"],
        ours=f"--help {best['help']:.2f} s, config error {best['config_error']:.2f} s, "
             f"first step {best['first_step']:.1f} s CPU (import torch, lightning, mlflow alone: "
             f"{best['training_imports']:.1f} s)",
        reference=f"import torch {best['torch_import']:.2f} s CPU",
        setting=f"CPU seconds, best of {repeats}, default run (phantom, simple_cnn)",
        details=details,
    )]
