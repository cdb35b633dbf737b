"""The `explainers` step: every chosen method scored on the same images, the same numbers as the pure
scoring functions, the same whatever the number of ranks, and logged under the documented names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from callbacks_helpers import ClassOrderedImages, run_in_group
from explain_models import TinyConvNet
from torch.utils.data import DataLoader, DistributedSampler

from heatlens.callbacks import ExplainCallbackError, ExplainedSample, ExplainersCallback
from heatlens.explain import registry, scoring

pytestmark = pytest.mark.usefixtures("one_thread")
METHODS = ["gradcam", "saliency"]
OPTIONS = {"max_sensitivity": {"nr_samples": 2}}


def _sample(loader: DataLoader) -> ExplainedSample:
    torch.manual_seed(0)
    return ExplainedSample.from_loader(TinyConvNet(width=4).eval(), loader, ["a", "b", "c"], ["lung"], None, "first")


def _step(methods: list[str] = METHODS) -> ExplainersCallback:
    return ExplainersCallback(methods=methods, num_images=5, examples=2, region_size=4, perturbation="mean",
                              metric_options=OPTIONS)


def test_step_logs_every_method_and_metric_as_the_pure_scoring_computes_them() -> None:
    dataset = ClassOrderedImages((4, 3, 2))
    sample = _sample(DataLoader(dataset, batch_size=2))
    findings = _step().explain(sample)
    metrics = scoring.metric_directions(["lung"])
    assert set(findings.metrics) == ({f"xai/method/{m}/{k}" for m in METHODS for k in metrics}
                                     | {f"xai/method/{m}/mean_rank" for m in METHODS})
    assert set(findings.figures) == {"figures/explainers/leaderboard.png", "figures/explainers/examples.png"}
    report = findings.documents["reports/explainers.json"]
    assert report["num_images"] == 5 and sorted(report["methods"]) == sorted(METHODS)
    arrays = findings.arrays["explain/explainers.npz"]
    index = arrays["index"]
    np.testing.assert_array_equal(index, [0, 1, 2, 3, 4])
    # The same images in one batch through the pure functions: batching does not change a number.
    images, masks = dataset.images[index], {"lung": dataset.mask.expand(len(index), -1, -1, -1)}
    with torch.no_grad():
        targets = sample.net(images).argmax(dim=1)
    np.testing.assert_array_equal(arrays["predictions"], targets.numpy())
    for method in METHODS:
        fn = registry.explainer(method)
        expected = scoring.score_batch(sample.net, images, targets, fn(sample.net, images, targets), fn, masks,
                                       scoring.Options(region_size=4, perturbation="mean"), index, OPTIONS)
        for metric, values in expected.items():
            np.testing.assert_allclose(arrays[f"{method}__{metric}"], values, rtol=1e-5, atol=1e-6, err_msg=metric)
            entry = report["scores"][method][metric]
            assert entry["estimate"] == pytest.approx(np.nanmean(values)) if np.isfinite(values).any() else True
            assert findings.metrics[f"xai/method/{method}/{metric}"] == entry["estimate"] or np.isnan(entry["estimate"])


def test_unknown_method_is_one_line() -> None:
    with pytest.raises(ExplainCallbackError, match="unknown method.*'gradcan'.*choose from gradcam") as error:
        ExplainersCallback(methods=["gradcan"])
    assert "\n" not in str(error.value)
    with pytest.raises(ExplainCallbackError, match="unknown metric.*'?road'?"):
        ExplainersCallback(metric_options={"road": {}})


def _on_ranks(rank: int, world_size: int, out: str) -> None:
    torch.set_num_threads(1)
    dataset = ClassOrderedImages((4, 3, 2))
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)
    findings = _step(["gradcam"]).explain(_sample(DataLoader(dataset, batch_size=2, sampler=sampler)))
    if rank == 0:
        np.savez(out, **findings.arrays["explain/explainers.npz"])
    else:
        assert findings is None


def test_two_ranks_score_exactly_what_one_rank_does(tmp_path: Path) -> None:
    single = _step(["gradcam"]).explain(_sample(DataLoader(ClassOrderedImages((4, 3, 2)), batch_size=3)))
    run_in_group(_on_ranks, 2, str(tmp_path / "ranks.npz"), timeout_s=400)
    both = np.load(tmp_path / "ranks.npz")
    one = single.arrays["explain/explainers.npz"]
    assert set(both.files) == set(one)
    for name in one:
        if name != "ids":
            np.testing.assert_allclose(both[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)
