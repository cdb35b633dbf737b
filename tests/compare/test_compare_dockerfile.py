"""The Dockerfile builds on a CUDA runtime image, installs this package and runs the default job.

No Docker daemon in the test environment: this checks the file against the repository instead
(base image, every COPY source present, the default command's script and config exist)."""

from __future__ import annotations

import json
import re

from heatlens.paths import PROJECT_ROOT


def instructions() -> list[tuple[str, str]]:
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [tuple(line.split(maxsplit=1)) for line in lines]


def test_dockerfile_uses_cuda_runtime_installs_package_and_trains_by_default():
    steps = instructions()
    base = [arg for op, arg in steps if op == "FROM"]
    assert len(base) == 1 and re.search(r"cuda.*runtime", base[0])
    for op, arg in steps:
        if op == "COPY":
            *sources, _ = arg.split()
            assert all((PROJECT_ROOT / s).exists() for s in sources if s != "."), arg
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "pip install --no-deps -e ." in runs
    command = json.loads(next(arg for op, arg in steps if op == "CMD"))
    assert command == ["python", "train.py"]
    assert (PROJECT_ROOT / "train.py").exists() and (PROJECT_ROOT / "conf" / "train.yaml").exists()
    assert any(op == "VOLUME" and "mlruns" in arg for op, arg in steps)
