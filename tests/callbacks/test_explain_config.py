"""conf/explain composes into the explanation steps the training job runs; bad options are named."""

from __future__ import annotations

import hydra
import pytest
from hydra import compose, initialize_config_dir

from heatlens.callbacks import (
    AopcCallback,
    AttributionsCallback,
    EmbeddingsCallback,
    ExplainCallbackError,
    ExplainersCallback,
    GradCamCallback,
    HeatmapStatsCallback,
    LocalisationCallback,
    PostFitExplanations,
    SanityCallback,
    ShortcutCallback,
)
from heatlens.callbacks.timing import StageTimer
from heatlens.paths import CONFIG_DIR


def _explain_cfg(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides)).explain


def _callbacks(*overrides: str) -> dict[str, object]:
    cfg = _explain_cfg(*overrides)
    return {name: hydra.utils.instantiate(node) for name, node in (cfg.callbacks or {}).items()}


def _post_fit(*overrides: str) -> PostFitExplanations:
    """What the training job builds: every step of `explain.callbacks`, run on one sample."""
    cfg = _explain_cfg(*overrides)
    return PostFitExplanations(list(_callbacks(*overrides).values()), max_images=cfg.max_images, sample=cfg.sample)


def test_default_full_and_none_choose_the_documented_callbacks() -> None:
    default = _callbacks()
    assert {k: type(v) for k, v in default.items()} == {
        "gradcam": GradCamCallback, "aopc": AopcCallback, "heatmap_stats": HeatmapStatsCallback,
        "embeddings": EmbeddingsCallback, "localisation": LocalisationCallback, "shortcut": ShortcutCallback}
    full = _callbacks("explain=full")
    assert set(full) == set(default) | {"attributions", "sanity", "explainers"}
    assert full["explainers"].methods == ["gradcam"]  # explain.methods defaults to Grad-CAM alone
    methods = _callbacks("explain=methods")
    assert set(methods) == set(default) | {"explainers"} and len(methods["explainers"].methods) >= 10
    assert _callbacks("explain=methods", "explain.methods=[xrai,gradcam]")["explainers"].methods == ["xrai", "gradcam"]
    with pytest.raises(Exception, match="unknown method.*'gradcan'"):
        _callbacks("explain=full", "explain.methods=[gradcan]")
    assert isinstance(full["attributions"], AttributionsCallback) and isinstance(full["sanity"], SanityCallback)
    assert _callbacks("explain=none") == {}


def test_shared_keys_reach_every_callback() -> None:
    overrides = ("explain.max_images=17", "explain.sample=balanced", "explain.aopc.region_size=4",
                 "explain.aopc.sigma=0.3", "explain.aopc.perturbation=blur", "explain.aopc.correct_only=false")
    post_fit = _post_fit(*overrides)
    # One sample for every step: its size and rule belong to the pass, not to each step.
    assert (post_fit.max_images, post_fit.sample) == (17, "balanced")
    assert [type(step) for step in post_fit.explainers] == [type(step) for step in _callbacks(*overrides).values()]
    assert _post_fit().sample == "stratified"
    # A step set to null is left out (as data.augment.<name>=null removes a transform).
    assert {step.name for step in _post_fit("explain=full", "explain.callbacks.sanity=null").explainers} == \
        {"gradcam", "aopc", "heatmap_stats", "embeddings", "localisation", "shortcut", "attributions", "explainers"}
    full = _post_fit("explain=full", *overrides)
    scored = next(step for step in full.explainers if isinstance(step, ExplainersCallback))
    assert (scored.options.region_size, scored.options.perturbation, scored.options.sigma) == (4, "blur", 0.3)
    aopc = next(step for step in post_fit.explainers if isinstance(step, AopcCallback))
    assert aopc.options == {"region_size": 4, "perturbation": "blur", "sigma": 0.3, "steps": None,
                            "score": "prob", "batch_size": None, "correct_only": False}


@pytest.mark.parametrize("override, named", [
    ("explain.aopc.perturbation=smudge", "explain.aopc.perturbation='smudge'"),
    ("explain.aopc.region_size=0", "explain.aopc.region_size=0"),
    ("explain.max_images=0", "explain.max_images=0"),
    ("explain.max_images=true", "explain.max_images=True"),
    ("explain.sample=random", "explain.sample='random'"),
])
def test_bad_options_fail_with_the_key_named(override: str, named: str) -> None:
    with pytest.raises(Exception) as caught:
        _post_fit(override)
    error = caught.value
    while error.__cause__ is not None and not isinstance(error, ExplainCallbackError):
        error = error.__cause__
    assert isinstance(error, ExplainCallbackError)
    assert named in str(error)


def test_stage_timer_is_exclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 3.0, 6.0])  # outer opens, inner opens, inner closes, outer closes
    monkeypatch.setattr("heatlens.callbacks.timing.time.perf_counter", lambda: next(clock))
    timer = StageTimer()
    with timer.stage("aopc"):
        with timer.stage("gradcam"):
            pass
    assert dict(timer.totals) == {"aopc": 1.0 + 3.0, "gradcam": 2.0}
    assert timer.metrics() == {"time/aopc_s": 4.0, "time/gradcam_s": 2.0}


def test_a_step_that_is_not_an_explanation_step_is_refused() -> None:
    with pytest.raises(ExplainCallbackError, match="RichProgressBar is not an explanation step"):
        PostFitExplanations([hydra.utils.instantiate({"_target_": "lightning.pytorch.callbacks.RichProgressBar"})])
