"""MkDocs hook: fills the generated pages from the source on every build, so they cannot drift.

A page asks for a generated block with an HTML comment on its own line:
`<!-- generated:config-keys -->` (every key of conf/), `<!-- generated:mlflow-names -->` (heatlens.catalog),
`<!-- generated:bench:<table> -->` (bench/results.json), `<!-- generated:changelog -->` (CHANGELOG.md).
A config key with neither a comment in conf/ nor a line in docs/_gen/config_notes.yaml is reported as a
warning, which `mkdocs build --strict` turns into a failed build.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import bench_tables  # noqa: E402
import config_reference  # noqa: E402

log = logging.getLogger("mkdocs.hooks.heatlens")
MARKER = re.compile(r"^<!-- generated:(?P<what>[a-z_:-]+) -->$", re.MULTILINE)


def mlflow_names() -> str:
    from heatlens import catalog

    out = []
    titles = {"param": "Params", "tag": "Tags", "metric": "Metrics", "artifact": "Artifacts"}
    for kind in catalog.KINDS:
        out += [f"## {titles[kind]}\n", "| name | meaning | logged by |", "|---|---|---|"]
        out += [f"| `{e.name}` | {e.meaning.replace('|', '&#124;')} | {e.source} |" for e in catalog.entries(kind)]
        out.append("")
    out += ["## Placeholders with fixed values\n", "| placeholder | values |", "|---|---|"]
    out += [f"| `<{name}>` | {', '.join(f'`{v}`' for v in values)} |" for name, values in catalog.VALUES.items()]
    return "\n".join(out)


def config_keys() -> str:
    notes = yaml.safe_load((HERE / "config_notes.yaml").read_text())
    missing = config_reference.undocumented(ROOT / "conf", notes)
    for key in missing:
        log.warning("config key %s has no comment in conf/ and no line in docs/_gen/config_notes.yaml", key)
    return config_reference.markdown(ROOT / "conf", notes)


def generate(what: str) -> str:
    if what == "config-keys":
        return config_keys()
    if what == "mlflow-names":
        return mlflow_names()
    if what == "changelog":
        return (ROOT / "CHANGELOG.md").read_text()
    if what.startswith("bench:"):
        table = what.split(":", 1)[1]
        return bench_tables.TABLES[table](bench_tables.load(ROOT / "bench" / "results.json"))
    raise ValueError(f"unknown generated block {what!r}")


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (MkDocs' hook signature)
    return MARKER.sub(lambda m: generate(m.group("what")), markdown)
