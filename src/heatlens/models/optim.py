"""Optimizers and LR schedulers by config name (`optimizer.name`, `scheduler.name`).

Every other key of the node is a keyword argument of the torch class. A bad one raises a
ModelConfigError naming `<node>.<key>=<value>`: torch's own messages ("'<=' not supported between
'float' and 'str'") name neither, so values are checked against the signature's defaults first and a
failing constructor is retried one option at a time to find the key at fault.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from heatlens.models.errors import ModelConfigError

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
SCHEDULERS = {
    "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
    "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau,
    "step": torch.optim.lr_scheduler.StepLR,
}
# Keys of the scheduler node that configure Lightning, not the torch scheduler.
LIGHTNING_SCHEDULER_KEYS = ("name", "monitor", "interval", "frequency")
INTERVALS = ("epoch", "step")
# What constructors and a first scheduler step raise on a bad value.
BUILD_ERRORS = (TypeError, ValueError, ArithmeticError, RuntimeError)


def show(value: Any) -> str:
    """A config value as the user typed it: true/false, quoted strings, numbers as they are."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def build_optimizer(optimizer_cfg: Mapping[str, Any], params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """`optimizer.name` (adam | sgd | rmsprop) with the node's other keys as keyword arguments."""
    name = optimizer_cfg.get("name")
    if name not in OPTIMIZERS:
        raise ModelConfigError(f"optimizer.name={show(name)}: choose one of {sorted(OPTIMIZERS)}")
    factory = OPTIMIZERS[name]
    options = {k: v for k, v in optimizer_cfg.items() if k != "name"}
    check_options("optimizer", factory, options)
    params = list(params)
    return construct("optimizer", factory, options, lambda **kw: factory(params, **kw))


def build_scheduler(
    scheduler_cfg: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer
) -> dict[str, Any] | None:
    """Lightning's lr_scheduler dict for `scheduler.name` (none | cosine | plateau | step)."""
    name, options = _scheduler_options(scheduler_cfg)
    if name is None:
        return None
    factory = SCHEDULERS[name]
    scheduler = construct("scheduler", factory, options, lambda **kw: factory(optimizer, **kw))
    config = {"scheduler": scheduler, "interval": scheduler_cfg.get("interval", "epoch")}
    for key in ("monitor", "frequency"):
        if scheduler_cfg.get(key) is not None:
            config[key] = scheduler_cfg[key]
    return config


def check_optimizer_and_scheduler(optimizer_cfg: Mapping[str, Any], scheduler_cfg: Mapping[str, Any] | None) -> None:
    """Build both on a dummy parameter and step the scheduler a few times: every bad value shows now."""
    build_optimizer(optimizer_cfg, [nn.Parameter(torch.zeros(1))])
    name, options = _scheduler_options(scheduler_cfg)
    if name is None:
        return
    factory = SCHEDULERS[name]

    def build_and_step(**kwargs: Any) -> None:
        # A fresh optimizer each time: a scheduler rewrites its optimizer's learning rates.
        scheduler = factory(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), **kwargs)
        # ReduceLROnPlateau steps on a metric value, the others on the epoch count.
        metric = (1.0,) if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) else ()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": intended here
            for _ in range(3):
                scheduler.step(*metric)

    construct("scheduler", factory, options, build_and_step)


def _scheduler_options(scheduler_cfg: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    """(name, torch keyword arguments) of a checked scheduler node; name None for `none`."""
    name = (scheduler_cfg or {}).get("name", "none")
    if name == "none":
        return None, {}
    if name not in SCHEDULERS:
        raise ModelConfigError(f"scheduler.name={show(name)}: choose one of {['none', *SCHEDULERS]}")
    _check_lightning_keys(name, scheduler_cfg)
    options = {k: v for k, v in scheduler_cfg.items() if k not in LIGHTNING_SCHEDULER_KEYS}
    check_options("scheduler", SCHEDULERS[name], options)
    return name, options


def _check_lightning_keys(name: str, scheduler_cfg: Mapping[str, Any]) -> None:
    interval = scheduler_cfg.get("interval", "epoch")
    if interval not in INTERVALS:
        raise ModelConfigError(f"scheduler.interval={show(interval)}: choose one of {list(INTERVALS)}")
    frequency = scheduler_cfg.get("frequency", 1)
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise ModelConfigError(f"scheduler.frequency={show(frequency)}: expected a positive integer")
    monitor = scheduler_cfg.get("monitor")
    if name == "plateau" and not isinstance(monitor, str):
        raise ModelConfigError(
            f"scheduler.monitor={show(monitor)}: scheduler=plateau needs a metric name, e.g. val/loss"
        )


def check_options(node: str, factory: Callable, options: Mapping[str, Any]) -> None:
    """Names and value types of `options` against the keyword arguments of `factory` (a torch class whose
    first argument is the parameters or the optimizer); each default tells its argument's type."""
    parameters = dict(list(inspect.signature(factory).parameters.items())[1:])
    for key, value in options.items():
        if key not in parameters:
            raise ModelConfigError(f"{node}.{key}={show(value)}: not an option of torch's {factory.__name__}; "
                                   f"choose from {sorted(parameters)}")
        expected = _expected_type(parameters[key])
        if expected == "bool" and not isinstance(value, bool):
            raise ModelConfigError(f"{node}.{key}={show(value)}: expected true or false")
        if expected == "number" and not _is_number(value):
            raise ModelConfigError(f"{node}.{key}={show(value)}: expected a number")
        if isinstance(expected, int) and not (
            _is_sequence(value) and len(value) == expected and all(map(_is_number, value))
        ):
            raise ModelConfigError(f"{node}.{key}={show(value)}: expected a list of {expected} numbers")
    missing = [k for k, p in parameters.items() if p.default is inspect.Parameter.empty and k not in options]
    if missing:
        raise ModelConfigError(f"{node}.{missing[0]} is missing: torch's {factory.__name__} needs it")


def construct(node: str, factory: Callable, options: dict[str, Any], build: Callable[..., Any]) -> Any:
    """`build(**options)`; on failure, the option that fails on its own is named (else all of them)."""
    try:
        return build(**options)
    except BUILD_ERRORS as err:
        error = err
    required = {k: v for k, v in options.items() if _is_required(factory, k)}
    trials = [required] if required else []
    trials += [{**required, k: v} for k, v in options.items() if k not in required]
    for trial in trials:
        try:
            build(**trial)
        except BUILD_ERRORS as err:
            culprits = {k: v for k, v in trial.items() if k not in required} or required
            raise ModelConfigError(f"{_settings(node, culprits)}: {_one_line(err)}") from None
    raise ModelConfigError(f"{_settings(node, options)}: {_one_line(error)}") from None


def _settings(node: str, options: Mapping[str, Any]) -> str:
    return ", ".join(f"{node}.{k}={show(v)}" for k, v in options.items())


def _is_required(factory: Callable, key: str) -> bool:
    return inspect.signature(factory).parameters[key].default is inspect.Parameter.empty


def _expected_type(parameter: inspect.Parameter) -> str | int | None:
    """"bool", "number", a tuple length, or None (no check) from the default or a plain annotation."""
    default, hint = parameter.default, str(parameter.annotation)
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, tuple):
        return len(default)
    if "list" in hint:  # e.g. min_lr: a number or one per parameter group
        return None
    if isinstance(default, numbers.Real) or (default is inspect.Parameter.empty and hint in ("int", "float")):
        return "number"
    return None


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
