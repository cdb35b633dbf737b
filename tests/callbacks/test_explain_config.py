"""conf/explain composes into the callbacks the training job instantiates; bad options are named."""

from __future__ import annotations

import hydra
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from heatlens.callbacks import (
    AopcCallback,
    AttributionsCallback,
    EmbeddingsCallback,
    ExplainCallbackError,
    GradCamCallback,
    HeatmapStatsCallback,
    LocalisationCallback,
    SanityCallback,
)
from heatlens.callbacks.context import StageTimer
from heatlens.paths import CONFIG_DIR, PROJECT_ROOT

OmegaConf.register_new_resolver("heatlens.project_root", lambda: str(PROJECT_ROOT), replace=True)


def _callbacks(*overrides: str) -> dict[str, object]:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    return {name: hydra.utils.instantiate(node) for name, node in (cfg.explain.callbacks or {}).items()}


def test_default_full_and_none_choose_the_documented_callbacks() -> None:
    default = _callbacks()
    assert {k: type(v) for k, v in default.items()} == {
        "gradcam": GradCamCallback, "aopc": AopcCallback, "heatmap_stats": HeatmapStatsCallback,
        "embeddings": EmbeddingsCallback, "localisation": LocalisationCallback}
    full = _callbacks("explain=full")
    assert set(full) == set(default) | {"attributions", "sanity"}
    assert isinstance(full["attributions"], AttributionsCallback) and isinstance(full["sanity"], SanityCallback)
    assert _callbacks("explain=none") == {}


def test_shared_keys_reach_every_callback() -> None:
    built = _callbacks("explain.max_images=17", "explain.aopc.region_size=4", "explain.aopc.sigma=0.3",
                       "explain.aopc.perturbation=blur", "explain.aopc.correct_only=false")
    assert {cb.max_images for cb in built.values()} == {17}
    assert built["aopc"].options == {"region_size": 4, "perturbation": "blur", "sigma": 0.3, "steps": None,
                                     "score": "prob", "batch_size": None, "correct_only": False}


@pytest.mark.parametrize("override, named", [
    ("explain.aopc.perturbation=smudge", "explain.aopc.perturbation='smudge'"),
    ("explain.aopc.region_size=0", "explain.aopc.region_size=0"),
    ("explain.max_images=0", "explain.max_images=0"),
])
def test_bad_options_fail_with_the_key_named(override: str, named: str) -> None:
    with pytest.raises(Exception) as caught:
        _callbacks(override)
    error = caught.value
    while error.__cause__ is not None and not isinstance(error, ExplainCallbackError):
        error = error.__cause__
    assert isinstance(error, ExplainCallbackError)
    assert named in str(error)


def test_stage_timer_is_exclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 3.0, 6.0])  # outer opens, inner opens, inner closes, outer closes
    monkeypatch.setattr("heatlens.callbacks.context.time.perf_counter", lambda: next(clock))
    timer = StageTimer()
    with timer.stage("aopc"):
        with timer.stage("gradcam"):
            pass
    assert dict(timer.totals) == {"aopc": 1.0 + 3.0, "gradcam": 2.0}
