"""Where the project keeps its configs, caches and MLflow store."""

import os
from pathlib import Path

# src/heatlens/paths.py -> repository root (the package is installed editable, see README).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"


def cache_dir() -> Path:
    """Root of generated data and decoded caches; `HEATLENS_CACHE` overrides it."""
    return Path(os.environ.get("HEATLENS_CACHE", PROJECT_ROOT / ".cache"))
