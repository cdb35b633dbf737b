"""Where heatlens finds its configs and keeps its MLflow store, run folders and caches.

Installed from a wheel, the configs ship inside the package (`heatlens/conf`, copied there by
setup.py); in a source checkout they stay in its top-level `conf/`. Runs and stores follow the
user, not the code: the working folder, or `$HEATLENS_HOME`.
"""

import os
from pathlib import Path

from platformdirs import user_cache_dir

PACKAGE_DIR = Path(__file__).resolve().parent


def source_checkout() -> Path | None:
    """The repository root when heatlens runs from its source tree (editable install), else None."""
    root = PACKAGE_DIR.parents[1]
    if PACKAGE_DIR.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


# The source checkout's root (tests, docs, Dockerfile). Meaningless for an installed wheel: runs
# and stores use home_dir(), configs CONFIG_DIR.
PROJECT_ROOT = PACKAGE_DIR.parents[1]


def _config_dir() -> Path:
    packaged = PACKAGE_DIR / "conf"
    return packaged if (packaged / "train.yaml").is_file() else PROJECT_ROOT / "conf"


CONFIG_DIR = _config_dir()


def home_dir() -> Path:
    """Where runs go by default (`mlruns/`, `outputs/`, `multirun/`): `$HEATLENS_HOME`, else the working folder."""
    return Path(os.environ.get("HEATLENS_HOME") or Path.cwd()).resolve()


def cache_dir() -> Path:
    """Root of generated data and decoded caches: `$HEATLENS_CACHE`, else the user's cache folder."""
    return Path(os.environ.get("HEATLENS_CACHE") or user_cache_dir("heatlens"))


def register_resolvers() -> None:
    """The OmegaConf resolvers heatlens configs use; called once by `heatlens.cli` for every entry point."""
    from omegaconf import OmegaConf  # here: this module is imported by layers that must not load OmegaConf

    OmegaConf.register_new_resolver("heatlens.home", lambda: str(home_dir()), replace=True)
    OmegaConf.register_new_resolver("heatlens.native_size", native_size, replace=True)


def native_size(backbone_name: str) -> int:
    """timm's native input size of a backbone (224 where timm says none): `backbone=timm` sets
    `data.image_size` from it. An unknown name gives 224 here; the model checks name it in one line."""
    from heatlens.errors import HeatlensError
    from heatlens.models.registry import native_input_size  # timm is imported only when a config asks

    try:
        return native_input_size(backbone_name) or 224
    except HeatlensError:
        return 224
