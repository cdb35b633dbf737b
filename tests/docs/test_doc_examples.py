"""The code of the Get-started page and of the own-dataset how-to runs as written: its Python blocks in
order (output compared where the page shows it), its `python train.py` commands compose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from doc_blocks import blocks, one_job, train_overrides
from heatlens.paths import CONFIG_DIR
from heatlens.report import headline

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNNER = Path(__file__).resolve().parent / "doc_blocks.py"


def run_page(page: Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The page's Python blocks in a fresh interpreter, as a reader pasting them would run them."""
    code = (f"import sys, pathlib; sys.path.insert(0, {str(RUNNER.parent)!r})\n"
            "from doc_blocks import run_python_blocks\n"
            f"print('compared', run_python_blocks(pathlib.Path({str(page)!r})))")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def compose_train(overrides: list[str]) -> None:
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        compose("train", overrides=one_job(overrides), return_hydra_config=True)


def test_the_own_dataset_howto_runs(tmp_path: Path) -> None:
    result = run_page(DOCS / "howto" / "own-dataset.md", tmp_path, {"HEATLENS_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compared 3" in result.stdout  # folder, CSV and DICOM: each printed what the page shows
    assert len(list((tmp_path / "my_dicoms").rglob("*"))) == 62  # 2 class folders + 60 suffix-less files
    assert (tmp_path / "my_xrays" / "labels.csv").read_text().count("\n") == 61


def test_the_own_dataset_train_commands_compose() -> None:
    commands = train_overrides(DOCS / "howto" / "own-dataset.md")
    assert len(commands) == 3
    for overrides in commands:
        compose_train(overrides)  # an unknown key or group would raise here


def test_get_started_shows_the_headline_table_the_code_prints() -> None:
    shown = next(code for lang, code in blocks(DOCS / "get-started.md") if lang == "text")
    labels = [label for label, _, _ in headline.PLAIN] + [headline.KNN[0]]
    for label in labels:
        assert any(line.startswith(label) for line in shown.splitlines()), label
    commands = [line for lang, code in blocks(DOCS / "get-started.md") if lang == "bash" for line in code.splitlines()]
    assert any("pip install -e \".[test]\" && python train.py" in line for line in commands)
    assert any(line.startswith("python -m pytest") for line in commands)


def test_every_train_command_of_the_docs_composes() -> None:
    """Each `python train.py ...` of the README and the site names real groups, choices and keys (the
    first job of a multirun)."""
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    commands = [(page, overrides) for page in pages for overrides in train_overrides(page)]
    assert len(commands) >= 30
    for page, overrides in commands:
        try:
            compose_train(overrides)
        except Exception as error:  # noqa: BLE001 (reported with the page and command)
            pytest.fail(f"{page.relative_to(ROOT)}: python train.py {' '.join(overrides)}: {error}")


@pytest.mark.slow
def test_get_started_python_reads_a_trained_run(trained_run, tmp_path: Path) -> None:
    env = {**trained_run.env, "HEATLENS_EXPERIMENT": "trained-run"}
    result = run_page(DOCS / "get-started.md", tmp_path, env)
    assert result.returncode == 0, result.stderr[-3000:]
    # The newest run of the shared store: the trained run, or a re-explanation another module added to it.
    name, status = result.stdout.splitlines()[0].split()
    experiment_id = trained_run.client.get_run(trained_run.run_id).info.experiment_id
    (printed,) = trained_run.client.search_runs([experiment_id], filter_string=f"attributes.run_name = '{name}'")
    metrics = printed.data.metrics
    assert f"test accuracy {metrics['test/acc']:.3f}, AOPC MoRF {metrics['xai/aopc_morf']:.3f}" in result.stdout
    assert status == "FINISHED"
