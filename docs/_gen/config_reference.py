"""The config reference, read from `conf/`: every key of every file with its group, default, type and the
comment beside it (the `# ...` at the end of its line, else the comment lines right above it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s#:][^:#]*?):(?:\s+(?P<rest>.*))?$")


@dataclass(frozen=True)
class Key:
    file: str  # relative to conf/, e.g. "data/phantom.yaml"
    group: str  # "data", "hydra/launcher", "" for the primary configs
    key: str  # as written on the command line: "data.image_size"
    default: object
    comment: str

    @property
    def type(self) -> str:
        if self.default is None:
            return "null"
        return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping"}.get(
            type(self.default), type(self.default).__name__)


def package_of(relative: Path, text: str) -> str:
    """The node a file's keys land in: its group folder (Hydra's default), `_global_` -> top level."""
    header = re.search(r"^#\s*@package\s+(\S+)", text, re.MULTILINE)
    group = ".".join(relative.parent.parts)
    if relative.name == "data_common.yaml":
        return "data"  # pulled into every conf/data/<name>.yaml with `/data_common@_here_`
    if header is None or header.group(1) == "_group_":
        return group
    return "" if header.group(1) == "_global_" else header.group(1)


def comments_by_path(text: str) -> dict[tuple[str, ...], str]:
    """Key path inside the file -> its comment. Line-based: YAML parsers drop comments."""
    found: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if not stripped.startswith("# @package"):
                above.append(stripped.lstrip("#").strip())
            continue
        if not stripped:
            above = []
            continue
        match = KEY_LINE.match(line)
        if match is None or stripped.startswith("-"):
            above = []
            continue
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = match.group("key").strip().strip("'\"")
        stack.append((indent, key))
        rest = QUOTED.sub("''", match.group("rest") or "")  # a `#` inside quotes is no comment
        inline = rest.split(" #", 1)[1].strip() if " #" in rest else rest[1:].strip() if rest.startswith("#") else ""
        comment = inline or " ".join(c for c in above if c)
        found[tuple(k for _, k in stack)] = comment
        above = []
    return found


def leaves(node: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """Every key of a loaded YAML document with its value; mappings are listed and descended into."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(((*path, str(key)), value))
            if isinstance(value, dict) and value:
                out.extend(leaves(value, (*path, str(key))))
    return out


def keys_of(conf: Path) -> list[Key]:
    keys = []
    for path in sorted(conf.rglob("*.yaml")):
        relative = path.relative_to(conf)
        text = path.read_text()
        document = yaml.safe_load(text) or {}
        document.pop("defaults", None)
        comments = comments_by_path(text)
        package = package_of(relative, text)
        group = "/".join(relative.parent.parts)
        for key_path, value in leaves(document):
            dotted = ".".join(filter(None, (package, *key_path)))
            keys.append(Key(str(relative), group, dotted, value, comments.get(key_path, "")))
    return keys


def _summary(path: Path) -> str:
    """What a file without keys does: its first comment line, else its defaults list."""
    text = path.read_text()
    comment = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
    defaults = (yaml.safe_load(text) or {}).get("defaults")
    return _cell(comment or f"defaults {defaults}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(value: object) -> str:
    if isinstance(value, dict):
        return "(mapping)" if value else "`{}`"
    shown = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    shown = shown.removesuffix("...").strip()
    return f"`{_cell(shown)}`" if len(shown) <= 60 else f"`{_cell(shown[:57])}...`"


def descriptions(keys: list[Key], notes: dict[str, str]) -> dict[str, str]:
    """Key -> what it means: its comment in conf/ (any file that sets it), else its line in the notes."""
    found = {k.key: k.comment for k in keys if k.comment}
    return {**{key: text for key, text in notes.items() if key not in found}, **found}


def describe(key: str, known: dict[str, str]) -> str:
    """The key's own description, else a pointer to the nearest described key it is part of, else ''."""
    if known.get(key):
        return known[key]
    parts = key.split(".")
    parent = next((".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if known.get(".".join(parts[:i]))), None)
    return f"part of `{parent}`" if parent else ""


def undocumented(conf: Path, notes: dict[str, str]) -> list[str]:
    keys = keys_of(conf)
    known = descriptions(keys, notes)
    return sorted({k.key for k in keys if not describe(k.key, known)})


def markdown(conf: Path, notes: dict[str, str]) -> str:
    """One section per config group, a table per file, one row per key."""
    keys = keys_of(conf)
    known = descriptions(keys, notes)
    by_file: dict[str, list[Key]] = {str(path.relative_to(conf)): [] for path in sorted(conf.rglob("*.yaml"))}
    for key in keys:
        by_file[key.file].append(key)
    groups: dict[str, list[str]] = {}
    for file in by_file:
        groups.setdefault(str(Path(file).parent) if "/" in file else "", []).append(file)
    out = []
    for group in sorted(groups, key=lambda g: (g != "", g)):
        out.append(f"## {'Primary configs and shared keys' if not group else f'`{group}=`'}\n")
        for file in groups[group]:
            choice = Path(file).stem
            title = f"`{group}={choice}`" if group else f"`{file}`"
            source = f"File `conf/{file}`."
            if not by_file[file]:
                out.append(f"### {title}\n\n{source} No keys of its own: {_summary(conf / file)}\n")
                continue
            out.append(f"### {title}\n\n{source}\n\n| key | default | type | meaning |\n|---|---|---|---|")
            for key in by_file[file]:
                out.append(f"| `{key.key}` | {_default(key.default)} | {key.type} | {_cell(describe(key.key, known))} |")
            out.append("")
    return "\n".join(out)
