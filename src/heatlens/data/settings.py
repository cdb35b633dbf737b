"""`data.*` config, checked once with errors that name the key at fault."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from heatlens.data.decode import DecodeOptions
from heatlens.data.dicom import FRAME_CHOICES
from heatlens.data.errors import DataError
from heatlens.data.parallel import worker_count
from heatlens.data.pixels import RESIZE_MODES
from heatlens.data.samples import TASKS
from heatlens.data.splits import BALANCE_MODES, validate_ratios

FORMATS = ("phantom", "covid_radiography", "image_folder", "split_folders", "csv", "coronahack", "brain_tumor",
           "chestxray14", "chexpert", "mimic_cxr", "vindr_cxr")
MULTILABEL_ONLY = ("chestxray14", "chexpert", "mimic_cxr", "vindr_cxr")
EITHER_TASK = ("phantom", "csv")
POS_WEIGHTS = ("none", "balanced")
_COMMON = {"name", "format", "root", "image_size", "channels", "batch_size", "num_workers", "persistent_workers",
           "split", "balance", "healthy_class", "on_bad_image", "seed", "augment", "resize", "dicom_frame",
           "build_workers", "task", "pos_weight"}


@dataclass
class DataSettings:
    name: str
    format: str
    root: Path | None
    image_size: int = 64
    channels: int = 1
    batch_size: int = 32
    num_workers: int = 0
    persistent_workers: bool = True
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    balance: str = "none"
    healthy_class: str | None = None
    on_bad_image: str = "error"
    seed: int = 0  # the SPLIT seed only; shuffling and augmentation follow the training seed
    augment: dict[str, Any] = field(default_factory=dict)
    resize: str = "pad"
    dicom_frame: str = "middle"
    build_workers: int | None = None  # processes generating the phantom / building the cache; None: every core
    task: str = "multiclass"  # multiclass | multilabel
    pos_weight: str = "none"  # multilabel: none | balanced (neg / pos per finding on train)
    options: dict[str, Any] = field(default_factory=dict)  # format-specific keys

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def decode_options(self) -> DecodeOptions:
        return DecodeOptions(self.image_size, self.channels, self.resize, self.dicom_frame)


def _int(cfg: Mapping, key: str, default: int, minimum: int) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DataError(f"data.{key}={value!r}: expected an integer >= {minimum}")
    return value


def _choice(cfg: Mapping, key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = cfg.get(key, default)
    if value not in allowed:
        raise DataError(f"data.{key}={value!r}: expected one of {list(allowed)}")
    return value


def parse_settings(cfg: DictConfig | Mapping) -> DataSettings:
    """Validate a `data` config (DictConfig or dict) into DataSettings."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = dict(cfg)
    name = cfg.get("name")
    if not isinstance(name, str) or not name:
        raise DataError("data.name: missing (each conf/data/<name>.yaml sets name: <name>)")
    data_format = _choice(cfg, "format", name, FORMATS)
    root = cfg.get("root")
    if root is None and data_format != "phantom":
        raise DataError(f"data.root: required for data={name} (the folder holding the dataset), "
                        f"e.g. data.root=/path/to/{name}")
    split = cfg.get("split", [0.8, 0.1, 0.1])
    if not isinstance(split, (list, tuple)):
        raise DataError(f"data.split={split!r}: expected a list of ratios such as [0.8, 0.1, 0.1]")
    channels = _int(cfg, "channels", 1, 1)
    if channels not in (1, 3):
        raise DataError(f"data.channels={channels}: expected 1 or 3")
    augment = cfg.get("augment") or {}
    if not isinstance(augment, Mapping):
        raise DataError(f"data.augment={augment!r}: expected a mapping of albumentations transform names")
    healthy = cfg.get("healthy_class")
    seed = cfg.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"data.seed={seed!r}: expected an integer")
    persistent = cfg.get("persistent_workers", True)
    if not isinstance(persistent, bool):
        raise DataError(f"data.persistent_workers={persistent!r}: expected true or false")
    build_workers = cfg.get("build_workers")
    if build_workers is not None:
        worker_count(build_workers)  # validates
    task = _choice(cfg, "task", "multiclass", TASKS)
    balance = _choice(cfg, "balance", "none", BALANCE_MODES)
    if task == "multilabel" and data_format not in MULTILABEL_ONLY + EITHER_TASK:
        raise DataError(f"data.task=multilabel: data={name} holds one class per image; multi-label formats are "
                        f"{list(MULTILABEL_ONLY + EITHER_TASK)}")
    if task == "multiclass" and data_format in MULTILABEL_ONLY:
        raise DataError(f"data.task=multiclass: data={name} is multi-label (several findings per image); "
                        "use data.task=multilabel")
    if task == "multilabel" and balance != "none":
        raise DataError(f"data.balance={balance}: single-label only; for multi-label data use "
                        "data.pos_weight=balanced")
    return DataSettings(
        name=name,
        format=data_format,
        root=Path(root).expanduser() if root is not None else None,
        image_size=_int(cfg, "image_size", 64, 8),
        channels=channels,
        batch_size=_int(cfg, "batch_size", 32, 1),
        num_workers=_int(cfg, "num_workers", 0, 0),
        persistent_workers=persistent,
        split=validate_ratios(split),
        balance=balance,
        healthy_class=str(healthy) if healthy is not None else None,
        on_bad_image=_choice(cfg, "on_bad_image", "error", ("error", "skip")),
        seed=seed,
        augment=dict(augment),
        resize=_choice(cfg, "resize", "pad", RESIZE_MODES),
        dicom_frame=_choice(cfg, "dicom_frame", "middle", FRAME_CHOICES),
        build_workers=build_workers,
        task=task,
        pos_weight=_choice(cfg, "pos_weight", "none", POS_WEIGHTS),
        options={k: v for k, v in cfg.items() if k not in _COMMON},
    )
