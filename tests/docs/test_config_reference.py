"""The config reference lists every key of every file in conf/, with the default and the comment the file
holds; compared with the files read by OmegaConf (not the generator's own parser)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from omegaconf import OmegaConf

import config_reference

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
NOTES = yaml.safe_load((ROOT / "docs" / "_gen" / "config_notes.yaml").read_text())
ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| (?P<default>.*?) \| (?P<type>\w+) \| (?P<meaning>.*) \|$")


def reference_by_file() -> dict[str, dict[str, tuple[str, str]]]:
    """conf file -> {key: (default cell, meaning cell)}, parsed back from the generated markdown."""
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    current = None
    for line in config_reference.markdown(CONF, NOTES).splitlines():
        if line.startswith("File `conf/"):
            current = line.split("`")[1].removeprefix("conf/")
            tables[current] = {}
        elif (row := ROW.match(line)) and current:
            tables[current][row["key"]] = (row["default"], row["meaning"])
    return tables


def dotted_keys(node, prefix=()) -> set[tuple[str, ...]]:
    keys = set()
    for key, value in node.items():
        keys.add((*prefix, str(key)))
        if isinstance(value, dict):
            keys |= dotted_keys(value, (*prefix, str(key)))
    return keys


def test_every_key_of_every_conf_file_is_in_the_reference() -> None:
    tables = reference_by_file()
    files = sorted(str(p.relative_to(CONF)) for p in CONF.rglob("*.yaml"))
    assert sorted(tables) == files
    for file in files:
        loaded = OmegaConf.to_container(OmegaConf.load(CONF / file), resolve=False)
        loaded.pop("defaults", None)
        expected = dotted_keys(loaded)
        listed = tables[file]
        # Each listed key ends with the file's own key path (the prefix is the node the file lands in).
        for path in expected:
            suffix = ".".join(path)
            assert any(k == suffix or k.endswith("." + suffix) for k in listed), f"conf/{file}: {suffix} not listed"
        assert len(listed) == len(expected), f"conf/{file}: {sorted(listed)} vs {sorted(expected)}"


def test_keys_are_prefixed_as_they_are_written_on_the_command_line() -> None:
    tables = reference_by_file()
    assert "data.image_size" in tables["data/phantom.yaml"]
    assert "data.resize" in tables["data_common.yaml"]  # pulled into every data config
    assert "hydra.launcher.partition" in tables["hydra/launcher/slurm.yaml"]
    # `@package _global_`: keys keep the path written in the file, no `experiment.` prefix.
    assert {"data.resize", "backbone.freeze", "optimizer.lr"} <= set(tables["experiment/covid_aopc.yaml"])
    assert tables["experiment/covid_aopc.yaml"]["data.resize"][1] == "Keras flow_from_directory, as the protocol did"
    assert "selection_metric" in tables["train.yaml"] and "optimizer.lr" in tables["optimizer/adam.yaml"]


def test_defaults_and_comments_are_the_files_own() -> None:
    tables = reference_by_file()
    # conf/data/phantom.yaml: `image_size: 64             # decoded / training side in px`
    assert tables["data/phantom.yaml"]["data.image_size"] == ("`64`", "decoded / training side in px")
    # conf/train.yaml: the comment block above `selection_tolerance`.
    default, meaning = tables["train.yaml"]["selection_tolerance"]
    assert default == "`0.01`" and meaning.startswith("Epochs whose selection_metric differs by at most")
    assert tables["train.yaml"]["ckpt_path"][0] == "`null`"
    # No comment in the file: the notes' line.
    assert tables["optimizer/sgd.yaml"]["optimizer.nesterov"] == ("`true`", NOTES["optimizer.nesterov"])


def test_comment_reader_on_a_hand_made_file() -> None:
    text = ("# header, not a key's\n\n"
            "# above a\n# second line\n"
            "a: 1\n"
            "b:\n"
            "  c: x   # inline c\n"
            "  d: [1, 2]\n"
            "\n# detached\n\n"
            "e: 'has # inside'\n")
    found = config_reference.comments_by_path(text)
    assert found == {("a",): "above a second line", ("b",): "", ("b", "c"): "inline c", ("b", "d"): "", ("e",): ""}


def test_no_key_of_conf_is_undocumented() -> None:
    assert config_reference.undocumented(CONF, NOTES) == []
