"""Optimizers and LR schedulers as Hydra targets: `optimizer._target_` / `scheduler._target_` name any
class whose first argument is the parameters (optimizer) or the optimizer (scheduler), `_partial_: true`.

Every other key of the node is a keyword argument of that class. A bad one raises a ModelConfigError
naming `<node>.<key>=<value>`: torch's own messages ("'<=' not supported between 'float' and 'str'")
name neither, so values are checked against the signature's defaults first and a failing constructor
is retried one option at a time to find the key at fault.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
# Hydra's own resolver of `_target_`; hydra.utils.get_class is the same plus an ERROR log of several lines,
# and the one-line error here is what the user should see.
from hydra._internal.utils import _locate
from torch import nn

from heatlens.models.errors import ModelConfigError

# Keys of a node that configure Hydra's instantiation, not the torch class.
HYDRA_KEYS = ("_target_", "_partial_")
# Keys of the scheduler node that configure Lightning, not the torch scheduler.
LIGHTNING_SCHEDULER_KEYS = ("monitor", "interval", "frequency")
INTERVALS = ("epoch", "step")
# What constructors and a first scheduler step raise on a bad value.
BUILD_ERRORS = (TypeError, ValueError, ArithmeticError, RuntimeError)
BASE_NAMES = {"optimizer": "torch.optim.Optimizer", "scheduler": "torch.optim.lr_scheduler.LRScheduler"}
SCHEDULER_BASES = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def show(value: Any) -> str:
    """A config value as the user typed it: true/false, quoted strings, numbers as they are."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def build_optimizer(optimizer_cfg: Mapping[str, Any], params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """`optimizer._target_` (e.g. torch.optim.AdamW) with the node's other keys as keyword arguments."""
    factory = resolve_target("optimizer", optimizer_cfg, (torch.optim.Optimizer,), "torch.optim.AdamW")
    options = {k: v for k, v in optimizer_cfg.items() if k not in HYDRA_KEYS}
    check_options("optimizer", factory, options)
    params = list(params)
    return construct("optimizer", factory, options, lambda **kw: factory(params, **kw))


def build_scheduler(
    scheduler_cfg: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer
) -> dict[str, Any] | None:
    """Lightning's lr_scheduler dict for `scheduler._target_`; None for `scheduler=none`."""
    factory, options = _scheduler_options(scheduler_cfg)
    if factory is None:
        return None
    scheduler = construct("scheduler", factory, options, lambda **kw: factory(optimizer, **kw))
    config = {"scheduler": scheduler, "interval": scheduler_cfg.get("interval", "epoch")}
    for key in ("monitor", "frequency"):
        if scheduler_cfg.get(key) is not None:
            config[key] = scheduler_cfg[key]
    return config


def resolve_target(node: str, cfg: Mapping[str, Any], bases: tuple[type, ...], example: str) -> type:
    """The class `<node>._target_` names, checked to be a subclass of one of `bases`."""
    target = cfg.get("_target_")
    if not isinstance(target, str) or not target:
        raise ModelConfigError(f"{node}._target_={show(target)}: expected a class path, e.g. {example}")
    try:
        factory = _locate(target)
    except (ImportError, ValueError, AttributeError):
        raise ModelConfigError(f"{node}._target_={show(target)}: no such class; e.g. {example}") from None
    if not isinstance(factory, type) or not issubclass(factory, bases):
        raise ModelConfigError(
            f"{node}._target_={show(target)}: not a torch {node} (a subclass of {BASE_NAMES[node]})"
        )
    return factory


def check_optimizer_and_scheduler(optimizer_cfg: Mapping[str, Any], scheduler_cfg: Mapping[str, Any] | None) -> None:
    """Build both on a dummy parameter and step the scheduler a few times: every bad value shows now."""
    build_optimizer(optimizer_cfg, [nn.Parameter(torch.zeros(1))])
    factory, options = _scheduler_options(scheduler_cfg)
    if factory is None:
        return

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


def _scheduler_options(scheduler_cfg: Mapping[str, Any] | None) -> tuple[type | None, dict[str, Any]]:
    """(class, torch keyword arguments) of a checked scheduler node; (None, {}) for `scheduler=none`."""
    if not scheduler_cfg or scheduler_cfg.get("_target_") is None:
        return None, {}
    factory = resolve_target("scheduler", scheduler_cfg, SCHEDULER_BASES, "torch.optim.lr_scheduler.StepLR")
    _check_lightning_keys(factory, scheduler_cfg)
    options = {k: v for k, v in scheduler_cfg.items() if k not in (*HYDRA_KEYS, *LIGHTNING_SCHEDULER_KEYS)}
    check_options("scheduler", factory, options)
    return factory, options


def _check_lightning_keys(factory: type, scheduler_cfg: Mapping[str, Any]) -> None:
    interval = scheduler_cfg.get("interval", "epoch")
    if interval not in INTERVALS:
        raise ModelConfigError(f"scheduler.interval={show(interval)}: choose one of {list(INTERVALS)}")
    frequency = scheduler_cfg.get("frequency", 1)
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise ModelConfigError(f"scheduler.frequency={show(frequency)}: expected a positive integer")
    monitor = scheduler_cfg.get("monitor")
    if issubclass(factory, torch.optim.lr_scheduler.ReduceLROnPlateau) and not isinstance(monitor, str):
        raise ModelConfigError(
            f"scheduler.monitor={show(monitor)}: ReduceLROnPlateau needs a metric name, e.g. val/loss"
        )


def check_options(node: str, factory: Callable, options: Mapping[str, Any]) -> None:
    """Names and value types of `options` against the keyword arguments of `factory` (a torch class whose
    first argument is the parameters or the optimizer); each default tells its argument's type."""
    parameters = dict(list(inspect.signature(factory).parameters.items())[1:])
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    parameters = {k: p for k, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    for key, value in options.items():
        if key not in parameters:
            if takes_any:
                continue
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
