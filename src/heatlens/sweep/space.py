"""The search space written in Hydra's override syntax, as Optuna distributions, and back to overrides.

`choice(a, b)` and `a,b` -> categorical; `interval(lo, hi)` -> float (`int(interval(...))` -> int),
`tag(log, ...)` -> log scale; `range(start, stop, step)` -> int or float with that step (stop
excluded, as in Hydra); `shuffle(range(...))` -> categorical. Any other override is fixed: passed
unchanged to every trial.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from heatlens.sweep.errors import SweepConfigError

# Keys a pretrained backbone answers differently from one trained from scratch.
PRETRAINED_ONLY_KEYS = ("backbone.freeze",)


@dataclass(frozen=True)
class SearchSpace:
    """What Optuna samples (`distributions`) and what every trial gets unchanged (`fixed` overrides)."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: tuple[str, ...] = ()


def parse_search_space(params: Mapping[str, Any] | None, arguments: Iterable[str]) -> SearchSpace:
    """`hydra.sweeper.params` (key -> override value) then the command line; a later key wins."""
    lines = [f"{key}={value}" for key, value in (params or {}).items()]
    by_key: dict[str, Override] = {}
    parser = OverridesParser.create()
    for line in [*lines, *arguments]:
        try:
            override = parser.parse_override(line)
        except HydraException as err:
            raise SweepConfigError(f"hydra.sweeper.params: cannot parse {line!r}: {err}") from None
        by_key.pop(override.get_key_element(), None)  # keep the order of the last writer
        by_key[override.get_key_element()] = override
    distributions: dict[str, BaseDistribution] = {}
    fixed: list[str] = []
    for key, override in by_key.items():
        if override.is_sweep_override():
            distributions[key] = distribution_for(override)
        else:
            fixed.append(override.input_line)
    return SearchSpace(distributions, tuple(fixed))


def distribution_for(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override (`key=choice(...)`, `interval`, `range`)."""
    value, key = override.value(), override.get_key_element()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        choices = list(override.sweep_iterator())
        if value.shuffle:  # Hydra shuffles with the unseeded `random`; a search needs no order anyway
            choices.sort(key=lambda c: (type(c).__name__, c))
        if not all(isinstance(c, (str, int, float, bool)) for c in choices):
            raise SweepConfigError(f"hydra.sweeper.params.{key}: choices must be numbers, booleans or strings")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values or value.step <= 0:
            raise SweepConfigError(f"hydra.sweeper.params.{key}={value}: needs start < stop and a positive step")
        if all(isinstance(v, int) for v in values):
            return IntDistribution(values[0], values[-1], step=int(value.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if not value.start < value.end or (log and value.start <= 0):
            raise SweepConfigError(f"hydra.sweeper.params.{key}: interval({value.start}, {value.end}) is empty"
                                   + (" or not positive (log scale)" if log else ""))
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise SweepConfigError(f"hydra.sweeper.params.{key}: {override.input_line!r} is not a search space "
                           "(use choice, interval, tag(log, interval) or range)")


def override_value(value: Any) -> str:
    """A sampled value written so that Hydra's override parser reads the same value back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # Inside Hydra quotes a backslash escapes only a quote or the closing position: double those.
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", str(value))
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"


def trial_overrides(params: Mapping[str, Any]) -> list[str]:
    return [f"{key}={override_value(value)}" for key, value in params.items()]


def representative_overrides(space: SearchSpace) -> list[str]:
    """One value per searched key (first choice / lower bound), to check the keys before any trial runs."""
    params = {
        key: dist.choices[0] if isinstance(dist, CategoricalDistribution) else dist.low
        for key, dist in space.distributions.items()
    }
    return [*space.fixed, *trial_overrides(params)]


def check_pretrained_questions(space: SearchSpace, backbone: Mapping[str, Any]) -> None:
    """Freezing only makes sense for weights learnt elsewhere: refuse to search it otherwise."""
    if backbone.get("pretrained") or backbone.get("weights_file"):
        return
    for key in PRETRAINED_ONLY_KEYS:
        if key in space.distributions:
            raise SweepConfigError(
                f"hydra.sweeper.params.{key}: backbone={backbone.get('name')} has no pretrained weights "
                f"(backbone.pretrained=false, backbone.weights_file=null), so freezing would keep random "
                f"weights; use hparams_search=optuna, or set backbone.pretrained=true / backbone.weights_file"
            )
