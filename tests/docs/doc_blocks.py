"""Run the code blocks of a docs page as a reader would: the `python` blocks in order in one namespace,
each compared with the `text` block right after it (its expected output), if there is one."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(page: Path) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of the page, in order."""
    return [(m.group("lang"), m.group("code")) for m in FENCE.finditer(page.read_text())]


def run_python_blocks(page: Path) -> int:
    """Execute the page's python blocks; fail on a block whose output differs from the text block after
    it. Returns the number of outputs compared."""
    namespace: dict = {"__name__": "__doc_page__"}
    found = blocks(page)
    compared = 0
    for i, (lang, code) in enumerate(found):
        if lang != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{page.name} block {i}", "exec"), namespace)  # noqa: S102 (the page's own code)
        sys.stdout.write(out.getvalue())  # what a reader would see
        following = found[i + 1] if i + 1 < len(found) else None
        if following is not None and following[0] == "text":
            assert out.getvalue().strip() == following[1].strip(), f"{page.name} block {i} printed:\n{out.getvalue()}"
            compared += 1
    return compared


def train_overrides(page: Path) -> list[list[str]]:
    """The overrides of every `python train.py ...` command in the page's bash blocks."""
    commands = []
    for lang, code in blocks(page):
        if lang != "bash":
            continue
        for line in code.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["python", "train.py"]:
                commands.append([w for w in words[2:] if not w.startswith("-")])
    return commands


def one_job(overrides: list[str]) -> list[str]:
    """The first job of a multirun's overrides (`backbone=vgg16,densenet201` -> `backbone=vgg16`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    jobs = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            jobs.append(f"{override.get_key_element()}={first}")
        else:
            jobs.append(override.input_line)
    return jobs
