"""Install anywhere: a wheel of this checkout, installed into a fresh virtual environment, runs a tiny
job from an empty folder: configs come from the package, runs go to ./mlruns of that folder.

The fresh environment borrows the project venv's dependencies through a .pth file. Entries of a
.pth file are plain path entries (their own .pth files are not run), so the project's editable
heatlens, which lives in such a .pth file, stays invisible there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from heatlens.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow

PACKAGE_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "src", "conf")
TINY = ["data.num_images=80", "data.image_size=32", "data.source_size=48", "data.batch_size=16",
        "trainer.max_epochs=1", "explain=none", "callbacks=none", "logger.figures=false"]


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed (no heatlens source on its path); returns its bin folder."""
    root = tmp_path_factory.mktemp("install")
    # Built from a copy, so the build leaves no build/ or egg-info behind in the checkout.
    source = root / "source"
    for name in PACKAGE_FILES:
        origin = PROJECT_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"),
          str(source)])
    (wheel,) = (root / "dist").glob("heatlens-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # Installed before the dependencies become visible: pip then sees no other heatlens to replace.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    target = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (target / "heatlens_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "HEATLENS_HOME", "PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def test_the_wheel_carries_its_configs(installed, tmp_path) -> None:
    script = "import heatlens.paths as p; print(p.PACKAGE_DIR); print(p.CONFIG_DIR); print(p.source_checkout())"
    package, config, checkout = _run([str(installed / "python"), "-c", script], cwd=tmp_path,
                                     env=_clean_env()).stdout.split()
    assert Path(package).is_relative_to(installed.parent) and checkout == "None"
    assert Path(config) == Path(package) / "conf"
    shipped = {p.relative_to(config).as_posix() for p in Path(config).rglob("*.yaml")}
    assert shipped == {p.relative_to(PROJECT_ROOT / "conf").as_posix() for p in (PROJECT_ROOT / "conf").rglob("*.yaml")}


def test_a_job_from_an_empty_folder_writes_mlruns_there(installed, tmp_path) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    env = _clean_env(HEATLENS_CACHE=str(tmp_path / "cache"), HEATLENS_GIT_COMMIT="built-from-wheel")
    _run([str(installed / "heatlens-train"), *TINY], cwd=work, env=env)
    assert (work / "mlruns" / "mlflow.db").is_file() and (work / "outputs").is_dir()
    client = MlflowClient(f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("heatlens")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["git_commit"] == "built-from-wheel"  # no checkout: the build's record
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(work / "mlruns" / "artifacts")
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"config", "reports", "checkpoints"}
