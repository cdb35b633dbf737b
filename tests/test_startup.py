"""Lazy start: each command imports what its work needs, when it needs it (issue 22).

Every check runs in a fresh interpreter and reads its `sys.modules`: `--help`, `--cfg job` and a config
error of every entry point import none of the heavy libraries, importing a package face costs nothing,
a run that is not a sweep never imports Optuna, and a sweep's controller never imports torch. New
packages and entry points are covered as they come: the faces are found by walking `src/heatlens`, the
entry points are the `[project.scripts]`.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import heatlens

ROOT = Path(__file__).resolve().parents[1]
# What the issue names: none of these for --help, --cfg job or a config error.
HEAVY = ("mlflow", "optuna", "sqlalchemy", "matplotlib", "pandas", "torchvision")
SWEEP_ONLY = ("optuna", "sqlalchemy")

PROBE = """
import json, runpy, sys
sys.argv = [{argv0!r}, *{args!r}]
code = 0
try:
    runpy.{runner}({target!r}, run_name="__main__")
except SystemExit as ended:
    code = ended.code if isinstance(ended.code, int) else (0 if ended.code is None else 1)
loaded = sorted({{m.split(".")[0] for m in sys.modules}})
print(json.dumps({{"code": code, "loaded": loaded}}))
"""


def probe(target: str, args: list[str], tmp_path: Path, module: bool = True) -> tuple[int, set[str], str]:
    """Run an entry point as `python -m target args` (or `python target args`) in a fresh interpreter:
    (exit code, top-level modules it imported, stderr)."""
    code = PROBE.format(argv0=target, args=args, runner="run_module" if module else "run_path", target=target)
    env = {"HEATLENS_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["code"], set(result["loaded"]), out.stderr


def entry_modules() -> dict[str, str]:
    """heatlens-<command> -> module, from pyproject.toml."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return {name: target.split(":")[0] for name, target in scripts.items()}


@pytest.mark.parametrize("script", sorted(entry_modules()))
def test_help_of_every_entry_point_imports_nothing_heavy(script, tmp_path):
    code, loaded, stderr = probe(entry_modules()[script], ["--help"], tmp_path)
    assert code == 0, stderr
    assert loaded.isdisjoint(HEAVY), f"{script} --help imported {sorted(loaded & set(HEAVY))}"


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"], ["optimizer.lr=abc"]],
                         ids=["help", "cfg-job", "config-error"])
def test_train_py_stays_light_until_the_config_is_checked(args, tmp_path):
    code, loaded, stderr = probe(str(ROOT / "train.py"), args, tmp_path, module=False)
    if args == ["optimizer.lr=abc"]:
        assert code == 2 and stderr.strip() == "train.py: error: optimizer.lr='abc': expected a number"
        # Judged by torch alone: not even Lightning is imported for a typo in the optimizer.
        assert "lightning" not in loaded and "torch" in loaded
    else:
        assert code == 0, stderr
    assert loaded.isdisjoint(HEAVY), f"train.py {args} imported {sorted(loaded & set(HEAVY))}"
    assert not (tmp_path / "outputs").exists()  # --help, --cfg and a config error leave no output folder


def test_compare_cfg_job_imports_nothing_heavy(tmp_path):
    code, loaded, stderr = probe("heatlens.cli.compare", ["--cfg", "job"], tmp_path)
    assert code == 0, stderr
    assert loaded.isdisjoint(HEAVY)


def _faces() -> list[str]:
    package = Path(heatlens.__file__).parent
    return sorted(f"heatlens.{m.name}" for m in pkgutil.iter_modules([str(package)]) if m.ispkg)


def test_importing_every_package_face_costs_nothing(tmp_path):
    """`import heatlens.<package>` for every package: members load on first use (heatlens.lazy)."""
    faces = _faces()
    assert {"heatlens.tracking", "heatlens.models", "heatlens.sweep", "heatlens.data"} <= set(faces)
    code = "import json, sys\n" + "".join(f"import {f}\n" for f in faces) + \
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert loaded.isdisjoint((*HEAVY, "lightning", "torch", "timm")), sorted(loaded & {*HEAVY, "lightning", "torch"})


def test_a_face_still_gives_every_member_it_lists():
    """Lazy faces keep their public names: each listed member resolves to the object of its module."""
    import importlib

    for face in _faces():
        module = importlib.import_module(face)
        for name in getattr(module, "__all__", []):
            assert getattr(module, name) is not None, f"{face}.{name}"


def test_a_run_that_is_not_a_sweep_never_imports_optuna():
    """Everything a training run, its explanation steps and a re-explanation import: no Optuna, no SQLAlchemy;
    and a simple_cnn model is built without timm."""
    code = (
        "import json, sys\n"
        "import heatlens.cli.training, heatlens.cli.reexplain, heatlens.callbacks as c\n"
        "[getattr(c, name) for name in c.__all__]\n"
        "from heatlens.models import build_model\n"
        "build_model({'name': 'simple_cnn', 'width': 4}, {'name': 'gap_linear'}, 3, 1)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "mlflow" in loaded and "lightning" in loaded  # the probe did import the run's work
    assert loaded.isdisjoint(SWEEP_ONLY), sorted(loaded & set(SWEEP_ONLY))
    assert "timm" not in loaded


def test_the_sweeper_imports_no_torch_or_lightning():
    """The Optuna sweeper runs in a sweep's controlling process (and in every tiny-app worker of
    tests/sweep): it asks Optuna, writes the sweep's MLflow run and figures, and trains nothing."""
    code = (
        "import json, sys\n"
        "import hydra_plugins.heatlens_optuna_sweeper._impl\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert {"optuna", "mlflow"} <= loaded  # the probe did import the sweeper's work
    assert loaded.isdisjoint({"torch", "lightning", "timm"}), sorted(loaded & {"torch", "lightning", "timm"})
