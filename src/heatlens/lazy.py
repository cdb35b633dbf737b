"""Package faces that import their members on first use (PEP 562).

`from heatlens.tracking import RunHandle` loads `heatlens.tracking.run` only, not MLflow's logger, the
report or the served model: an entry point pays for what its work needs (tests/test_startup.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_members(package: str, members: Mapping[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of `package`: name -> getattr(`package.<members[name]>`, name), cached."""

    def __getattr__(name: str) -> Any:
        if name not in members:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{members[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
