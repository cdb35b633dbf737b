"""The `clinical:` block of the training config, checked once before any data pass."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heatlens.clinical.operating_points import OperatingRule, parse_rule
from heatlens.errors import HeatlensError

CALIBRATIONS = ("none", "temperature")
TTA_MODES = ("none", "flips", "light")


class ClinicalConfigError(HeatlensError):
    """A `clinical.<key>` value is wrong: the message names it."""


@dataclass(frozen=True)
class ClinicalSettings:
    calibration: str = "temperature"
    operating_point: OperatingRule = OperatingRule("no_false_negative")
    tta: str = "none"
    bins: int = 15
    n_boot: int = 1000
    confidence: float = 0.95


def _integer(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ClinicalConfigError(f"clinical.{key}={value!r}: expected an integer >= {minimum}")
    return int(value)


def clinical_settings(block: Mapping[str, Any] | None) -> ClinicalSettings:
    """ClinicalSettings from `cfg.clinical` (missing keys take the defaults); raises ClinicalConfigError."""
    block = dict(block or {})
    defaults = ClinicalSettings()
    unknown = sorted(set(block) - {"calibration", "operating_point", "tta", "bins", "n_boot", "confidence"})
    if unknown:
        raise ClinicalConfigError(f"clinical.{unknown[0]}: not a clinical option (calibration, operating_point, "
                                  f"tta, bins, n_boot, confidence)")
    calibration = block.get("calibration", defaults.calibration)
    if calibration not in CALIBRATIONS:
        raise ClinicalConfigError(f"clinical.calibration={calibration!r}: expected one of {list(CALIBRATIONS)}")
    tta = block.get("tta", defaults.tta)
    if tta not in TTA_MODES:
        raise ClinicalConfigError(f"clinical.tta={tta!r}: expected one of {list(TTA_MODES)}")
    try:
        rule = parse_rule(block.get("operating_point", str(defaults.operating_point)))
    except ValueError as err:
        raise ClinicalConfigError(f"clinical.operating_point={err}") from None
    confidence = block.get("confidence", defaults.confidence)
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ClinicalConfigError(f"clinical.confidence={confidence!r}: expected a number in (0, 1)")
    return ClinicalSettings(
        calibration=calibration, operating_point=rule, tta=tta,
        bins=_integer(block.get("bins", defaults.bins), "bins", 2),
        n_boot=_integer(block.get("n_boot", defaults.n_boot), "n_boot", 100),
        confidence=float(confidence),
    )
