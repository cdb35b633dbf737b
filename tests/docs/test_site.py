"""The documentation site builds in strict mode, and strict mode fails on what it must: a broken link,
a config key described nowhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def build(root: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(root / "mkdocs.yml"),
                           "-d", str(out)], capture_output=True, text=True, env=env, timeout=300, cwd=root)


def copy_project(tmp_path: Path) -> Path:
    """The files a build reads, copied so a test can break one."""
    root = tmp_path / "project"
    for name in ("docs", "conf", "bench"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("mkdocs.yml", "CHANGELOG.md"):
        shutil.copy(ROOT / name, root / name)
    (root / "src").symlink_to(ROOT / "src")
    return root


def test_the_site_builds_strict_with_every_generated_page(tmp_path: Path) -> None:
    result = build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stderr[-3000:]
    site = tmp_path / "site"
    config = (site / "reference" / "config" / "index.html").read_text()
    assert "data.image_size" in config and "selection_tolerance" in config
    names = (site / "reference" / "mlflow-names" / "index.html").read_text()
    assert "xai/aopc_morf" in names and "reports/test_predictions.npz" in names
    # mkdocstrings read the package: the functions of heatlens.explain with their docstrings.
    assert "gradcam_all_classes" in (site / "reference" / "api" / "explain-cam" / "index.html").read_text()
    assert "perturbation_curves" in (site / "reference" / "api" / "explain-perturbation" / "index.html").read_text()
    bench = (site / "benchmarks" / "index.html").read_text()
    assert "14.24" in bench and "python -m heatlens.bench --only scale --out bench/results.json" in bench
    assert not list(site.rglob("_gen"))  # the generators are not published
    assert "generated:" not in "".join(p.read_text() for p in site.rglob("*.html"))  # every marker was filled


def test_strict_build_fails_on_a_broken_link_and_an_undocumented_config_key(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    with (root / "docs" / "design.md").open("a") as page:
        page.write("\nSee [nowhere](guides/no-such-page.md).\n")
    with (root / "conf" / "train.yaml").open("a") as conf:
        conf.write("brand_new_key: 3\n")
    result = build(root, tmp_path / "site")
    assert result.returncode != 0
    assert "guides/no-such-page.md" in result.stderr
    assert "config key brand_new_key has no comment" in result.stderr


def test_a_comment_in_conf_documents_a_new_key(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    with (root / "conf" / "train.yaml").open("a") as conf:
        conf.write("brand_new_key: 3       # what it does\n")
    result = build(root, tmp_path / "site")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "what it does" in (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
