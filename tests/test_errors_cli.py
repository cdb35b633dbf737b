"""One error model (issue 22): every user error is a HeatlensError, and every entry point reports one as
`<program>: error: <one line>` with exit code 2 (as argparse does), leaving no output folder behind."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from heatlens.cli import exits
from heatlens.errors import HeatlensError
from tests.in_process import run_main

ROOT = Path(__file__).resolve().parents[1]


def test_every_layer_error_is_a_heatlens_error_and_still_a_value_error():
    from heatlens.callbacks import ExplainCallbackError
    from heatlens.cli.checks import TrainConfigError
    from heatlens.cli.explain import ReexplainError
    from heatlens.clinical import ClinicalConfigError
    from heatlens.data import DataError
    from heatlens.explain import ExplainError
    from heatlens.models import InputTooSmallError, ModelConfigError
    from heatlens.report import CompareError
    from heatlens.sweep import SweepConfigError
    from heatlens.tracking import ModelInputError, TrackingError

    for error in (ExplainCallbackError, TrainConfigError, ReexplainError, ClinicalConfigError, DataError,
                  ExplainError, InputTooSmallError, ModelConfigError, CompareError, SweepConfigError,
                  ModelInputError, TrackingError):
        assert issubclass(error, HeatlensError) and issubclass(error, ValueError), error


@pytest.mark.parametrize(("argv0", "expected"), [
    ("train.py", "train.py"),  # python train.py
    ("/opt/venv/bin/heatlens-train", "heatlens-train"),  # the console script
    (str(Path(exits.__file__).with_name("train.py")), "heatlens-train"),  # python -m heatlens.cli.train
])
def test_the_program_named_is_what_the_user_typed(monkeypatch, argv0, expected):
    monkeypatch.setattr(sys, "argv", [argv0])
    assert exits.program("train") == expected


def test_a_message_on_several_lines_is_reported_on_one(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["heatlens-compare"])
    with pytest.raises(SystemExit) as ended:
        exits.fail("compare", HeatlensError("pair must name two runs,\n  got ['a']"))
    assert ended.value.code == 2
    assert capsys.readouterr().err == "heatlens-compare: error: pair must name two runs, got ['a']\n"


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        exits.run_task("train", lambda cfg: 1 / 0, OmegaConf.create({}))


def test_only_a_folder_hydra_just_made_is_removed(tmp_path):
    home = tmp_path / "home"
    fresh = home / "outputs" / "2026-01-01" / "10-00-00"
    (fresh / ".hydra").mkdir(parents=True)
    (fresh / ".hydra" / "config.yaml").write_text("a: 1\n")
    (fresh / "train.log").write_text("")
    assert exits.remove_fresh_run_dir(fresh, stop_at=home)
    assert home.is_dir() and not (home / "outputs").exists()  # empty parents go too, up to the home

    kept = home / "outputs" / "run"
    (kept / "checkpoints").mkdir(parents=True)  # anything but Hydra's own files: the folder is kept
    (kept / "checkpoints" / "last.ckpt").write_text("x")
    assert not exits.remove_fresh_run_dir(kept, stop_at=home) and kept.is_dir()

    old = home / "outputs" / "old"  # a folder that existed before this process: kept, even if empty
    old.mkdir()
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert not exits.remove_fresh_run_dir(old, stop_at=home) and old.is_dir()


def _env(tmp_path: Path) -> dict[str, str]:
    return {"HEATLENS_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}


def _one_error_line(result, program: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), result.stderr[-3000:]
    return lines[0]


def test_train_bad_value(tmp_path):
    from heatlens.cli.train import main

    result = run_main(main, "optimizer.lr=abc", env=_env(tmp_path), program="train.py")
    assert _one_error_line(result, "train.py") == "train.py: error: optimizer.lr='abc': expected a number"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no outputs/<date>/<time>/ left behind


def test_train_bad_value_found_after_lightning(tmp_path):
    from heatlens.cli.train import main

    result = run_main(main, "trainer.max_epochs=abc", env=_env(tmp_path), program="heatlens-train")
    line = _one_error_line(result, "heatlens-train")
    assert "trainer.max_epochs='abc'" in line  # named as typed, not as the scheduler.T_max it feeds
    assert not (tmp_path / "outputs").exists()


def test_explain_bad_value(tmp_path):
    from heatlens.cli.explain import main

    result = run_main(main, "run_id=0123456789abcdef", env=_env(tmp_path), program="heatlens-explain")
    assert "run_id=0123456789abcdef" in _one_error_line(result, "heatlens-explain")
    assert not (tmp_path / "outputs").exists()


def test_compare_bad_value_writes_nothing_outside_out_dir(tmp_path):
    from heatlens.cli.compare import main

    report = tmp_path / "report"
    result = run_main(main, "experiment_name=nothere", f"out_dir={report}", env=_env(tmp_path),
                      program="heatlens-compare")
    assert "experiment 'nothere' not found" in _one_error_line(result, "heatlens-compare")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("mlflow.db")) == []


def test_compare_writes_only_under_out_dir():
    """The run folder Hydra creates is out_dir itself, with no `.hydra/` and no log file in it."""
    from hydra import compose, initialize_config_dir

    from heatlens.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("compare", overrides=["out_dir=/somewhere/X"], return_hydra_config=True)
    assert cfg.hydra.run.dir == "/somewhere/X" and cfg.hydra.output_subdir is None
    assert all("filename" not in handler for handler in cfg.hydra.job_logging.get("handlers", {}).values())


def test_bench_bad_value(capsys):
    from heatlens.bench.__main__ import main

    with pytest.raises(SystemExit) as ended:
        main(["--only", "nope"])
    assert ended.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("python -m heatlens.bench: error: argument --only: invalid choice: 'nope'")


def test_sync_bad_value(tmp_path, capsys, monkeypatch):
    from heatlens.cli.sync import main

    monkeypatch.setattr(sys, "argv", ["heatlens-sync"])  # as the console script starts it

    with pytest.raises(SystemExit) as ended:
        main([str(tmp_path / "no-such-run")])
    assert ended.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("heatlens-sync: error: ") and "no-such-run" in lines[0]


def test_ui_bad_value(capsys, monkeypatch):
    from heatlens.cli.ui import main

    monkeypatch.setattr(sys, "argv", ["heatlens-ui"])

    with pytest.raises(SystemExit) as ended:
        main(["--backend-store-uri", "http://127.0.0.1:5000"])
    assert ended.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("heatlens-ui: error: --backend-store-uri=http://127.0.0.1:5000")
