"""Dockerfile, .dockerignore and compose.yaml checked against the repository and the installed tools.

No Docker engine in the test environment: nothing here builds or starts an image. What can be
checked without one is: every file the image copies exists and is not ignored, every command it
runs exists (console scripts, MLflow CLI options), the commit build argument reaches
heatlens.tracking.git_commit, and the compose services point at each other with the right names,
ports, environment and volumes. The server command itself runs in the suite
(tests/tracking/test_tracking_server.py starts compose.yaml's command line).
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib

import pytest
from mlflow.cli import cli as mlflow_cli

from heatlens.paths import PROJECT_ROOT
from heatlens.tracking import git_commit
from tracking_server import compose, options


def instructions() -> list[tuple[str, str]]:
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [tuple(line.split(maxsplit=1)) for line in lines]


def console_scripts() -> set[str]:
    return set(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def ignored(path: str) -> bool:
    patterns = [p.strip() for p in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_dockerfile_installs_this_checkout_and_trains_by_default() -> None:
    steps = instructions()
    base = [arg for op, arg in steps if op == "FROM"]
    assert len(base) == 1 and re.search(r"cuda.*runtime", base[0])
    for op, arg in steps:
        if op == "COPY":
            *sources, _ = arg.split()
            for source in sources:
                assert source == "." or ((PROJECT_ROOT / source).exists() and not ignored(source)), arg
    # What `COPY . .` must bring for `pip install -e .` and the configs.
    for needed in ("pyproject.toml", "setup.py", "README.md", "src/heatlens/__init__.py", "conf/train.yaml"):
        assert (PROJECT_ROOT / needed).exists() and not ignored(needed), needed
    assert ignored(".git") and ignored("mlruns") and ignored("src/heatlens/__pycache__")
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "pip install --no-deps -e ." in runs
    command = json.loads(next(arg for op, arg in steps if op == "CMD"))
    assert command == ["heatlens-train"] and command[0] in console_scripts()


def test_the_commit_build_argument_reaches_the_runs_tag(monkeypatch) -> None:
    steps = instructions()
    assert ("ARG", "GIT_COMMIT=unknown") in steps
    (env,) = [arg for op, arg in steps if op == "ENV" and "${GIT_COMMIT}" in arg]
    name, value = env.split("=", 1)
    assert value == "${GIT_COMMIT}"
    monkeypatch.setattr("heatlens.tracking.setup.source_checkout", lambda: None)  # the image has no .git
    monkeypatch.setenv(name, "0123abc")
    assert git_commit() == "0123abc"
    build = compose()["services"]["trainer"]["build"]
    assert build["context"] == "." and build["args"]["GIT_COMMIT"] == "${GIT_COMMIT:-unknown}"


def test_compose_server_proxies_artifacts_and_the_trainer_points_at_it() -> None:
    services = compose()["services"]
    server, trainer = services["mlflow"], services["trainer"]
    assert server["image"] == trainer["image"] and server["build"] == trainer["build"]  # one image

    command = server["command"]
    assert command[:2] == ["mlflow", "server"]
    flags = options(command)
    known = {name for param in mlflow_cli.commands["server"].params for name in param.opts}
    assert set(flags) <= known, set(flags) - known
    assert "--serve-artifacts" in flags and "--default-artifact-root" not in flags  # mlflow-artifacts:/ URIs
    port = flags["--port"]
    assert flags["--host"] == "0.0.0.0" and server["ports"] == [f"{port}:{port}"]
    store = flags["--backend-store-uri"].removeprefix("sqlite:///")
    mounts = [volume.split(":")[1] for volume in server["volumes"]]
    assert any(store.startswith(m + "/") for m in mounts)
    assert any(flags["--artifacts-destination"].startswith(m + "/") for m in mounts)
    assert f"mlflow:{port}" in flags["--allowed-hosts"].split(",")  # the Host header the trainer sends
    assert f":{port}/health" in " ".join(server["healthcheck"]["test"])

    assert trainer["environment"]["MLFLOW_TRACKING_URI"] == f"http://mlflow:{port}"
    assert trainer["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert trainer["command"][0] in console_scripts()


def test_compose_volumes_match_the_image_folders() -> None:
    workdir = [arg for op, arg in instructions() if op == "WORKDIR"][-1]  # where jobs run
    env = " ".join(arg for op, arg in instructions() if op == "ENV")
    cache = re.search(r"HEATLENS_CACHE=(\S+)", env).group(1)
    volumes = compose()["services"]["trainer"]["volumes"]
    targets = {volume.split(":")[1] for volume in volumes}
    assert cache in targets and f"{workdir}/outputs" in targets  # Hydra's folders under the working folder
    named = {volume.split(":")[0] for volume in volumes + compose()["services"]["mlflow"]["volumes"]}
    declared = set(compose()["volumes"])
    assert {n for n in named if not n.startswith((".", "$", "/"))} == declared


@pytest.mark.parametrize("flag", ["--env-manager", "--host", "--port"])
def test_the_serving_command_in_the_docs_exists(flag) -> None:
    serve = mlflow_cli.commands["models"].commands["serve"]
    assert flag in {name for param in serve.params for name in param.opts}
