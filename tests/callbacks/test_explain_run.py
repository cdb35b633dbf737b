"""End to end on phantom data: `python train.py explain=full` (the session's shared `trained_run`) logs
every explanation, a trained model's heatmaps beat the baselines, and re-explaining with 2 DDP processes
equals 1 process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from callbacks_helpers import run_entry_point
from in_process import run_main
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from trained_run import TrainedRun

from heatlens.cli.explain import ReexplainError, reexplain
from heatlens.cli.explain import main as explain_main

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral_Pneumonia"]
CLASS_NAMES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
SCORES = ["pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy", "top_k_intersection",
          "top_k_iou", "auc", "uniform_relevance_mass_accuracy"]


class Run:
    """A run of a store and the arrays of its artifacts, downloaded into `tmp`."""

    def __init__(self, client: MlflowClient, run_id: str, tmp: Path) -> None:
        self.client, self.run_id, self.tmp = client, run_id, tmp
        self.data = client.get_run(run_id).data

    def npz(self, path: str) -> dict[str, np.ndarray]:
        local = self.client.download_artifacts(self.run_id, path, str(self.tmp))
        with np.load(local) as arrays:
            return {key: arrays[key] for key in arrays.files}


@pytest.fixture(scope="module")
def trained(trained_run: TrainedRun, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The session's shared `python train.py explain=full` run (tests/trained_run.py: 510 images of 32 px)."""
    return Run(trained_run.client, trained_run.run_id, tmp_path_factory.mktemp("trained"))


def test_a_run_has_every_metric_figure_and_array(trained: Run, trained_run: TrainedRun) -> None:
    metrics = trained.data.metrics
    expected = {"xai/aopc_morf", "xai/aopc_lerf", "xai/aopc_random", "xai/knn_acc_raw", "xai/knn_acc_embedding",
                "xai/silhouette_raw", "xai/silhouette_embedding", "xai/sanity_rank_corr"}
    expected |= {f"xai/aopc_morf/{name}" for name in CLASS_NAMES}
    expected |= {f"xai/loc/{kind}/{score}" for kind in ("lung", "lesion") for score in SCORES}
    expected |= {f"time/{stage}_s" for stage in ("gradcam", "aopc", "heatmap_stats", "embeddings", "localisation",
                                                 "attributions", "sanity")}
    assert expected <= set(metrics), sorted(expected - set(metrics))
    assert all(metrics[k] > 0 for k in metrics if k.startswith("time/"))

    figures = trained_run.artifacts("figures")
    expected_figures = {f"figures/gradcam/{c}.png" for c in CLASSES}
    expected_figures |= {f"figures/heatmaps/eigen_{c}.png" for c in CLASSES}
    expected_figures |= {"figures/heatmaps/average_grid.png", "figures/heatmaps/boxplots.png",
                         "figures/heatmaps/four_colour.png", "figures/aopc/curves.png", "figures/embeddings/tsne.png",
                         "figures/attributions/grid.png", "figures/sanity/cascade.png"}
    assert expected_figures <= figures, sorted(expected_figures - figures)
    assert {f"explain/{n}.npz" for n in ("gradcam", "aopc", "heatmap_stats", "embeddings", "localisation",
                                          "attributions")} <= trained_run.artifacts("explain")

    gradcam = trained.npz("explain/gradcam.npz")
    test_ids = trained.npz("reports/test_predictions.npz")
    assert gradcam["heatmaps"].dtype == np.float16 and gradcam["heatmaps"].shape == (51, 4, 4, 4)  # 32 px / 8
    assert sorted(gradcam["ids"].tolist()) == sorted(test_ids["ids"].tolist())
    np.testing.assert_allclose(gradcam["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    # The explained predictions are those of the test pass (the training part's own report).
    by_id = dict(zip(test_ids["ids"].tolist(), test_ids["probs"].argmax(axis=1).tolist()))
    assert gradcam["predictions"].tolist() == [by_id[i] for i in gradcam["ids"].tolist()]
    assert trained.npz("explain/embeddings.npz")["embeddings"].shape[0] == 51
    assert trained.npz("explain/attributions.npz")["integrated_gradients"].shape == (2, 32, 32)


def test_logged_aopc_and_localisation_follow_from_the_logged_arrays(trained: Run) -> None:
    aopc = trained.npz("explain/aopc.npz")
    for order in ("morf", "lerf", "random"):
        curves = aopc[f"curves_{order}"].astype(np.float64)
        scored = curves[~np.isnan(curves).any(axis=1)]
        # AOPC = 1/(L+1) sum_k (f(x0) - f(xk)), averaged over the scored (correctly classified) images.
        by_hand = ((scored[:, :1] - scored[:, 1:]).sum(axis=1) / scored.shape[1]).mean()
        assert trained.data.metrics[f"xai/aopc_{order}"] == pytest.approx(by_hand, abs=1e-6)
    scored_rows = ~np.isnan(aopc["curves_morf"]).any(axis=1)
    assert np.array_equal(scored_rows, aopc["labels"] == aopc["predictions"])  # correct_only
    local = trained.npz("explain/localisation.npz")
    for key in ("lesion__relevance_mass_accuracy", "lung__pointing_game"):
        values = local[key]
        assert trained.data.metrics[f"xai/loc/{key.replace('__', '/')}"] == pytest.approx(np.nanmean(values))
    # Normal images have no lesion: their lesion scores are NaN (not zeros dragging the mean down).
    normal = local["labels"] == CLASS_NAMES.index("Normal")
    assert normal.any() and np.isnan(local["lesion__pointing_game"][normal]).all()
    assert not np.isnan(local["lesion__pointing_game"][~normal]).all()


def test_trained_heatmaps_beat_the_uniform_map_and_random_order(trained: Run) -> None:
    metrics = trained.data.metrics
    assert metrics["test/acc"] > 0.5  # the model learned the lesions (chance is about 0.45: all Normal)
    assert metrics["xai/aopc_morf"] > metrics["xai/aopc_random"] + 0.05
    assert metrics["xai/aopc_morf"] > metrics["xai/aopc_lerf"]
    assert metrics["xai/shortcut/flagged_classes"] == 0  # the phantom has no planted marker here
    local = trained.npz("explain/localisation.npz")
    mass, uniform = local["lesion__relevance_mass_accuracy"], local["lesion__uniform_relevance_mass_accuracy"]
    has_lesion = ~np.isnan(uniform)
    assert has_lesion.sum() >= 10
    # A map with no positive evidence (NaN mass) puts none of it in the lesion.
    assert np.nan_to_num(mass[has_lesion], nan=0.0).mean() > 1.2 * uniform[has_lesion].mean()


def _reexplain(env: dict[str, str], run: Run, trainer: str, out: Path) -> Run:
    args = [f"run_id={run.run_id}", f"trainer={trainer}", "explain.max_images=null", "explain.aopc.region_size=16",
            "explain.aopc.correct_only=false", "logger.figures=false", f"hydra.run.dir={out}"]
    if trainer == "cpu":  # in this process; the DDP job is the entry point's subprocess smoke test
        done = run_main(explain_main, *args, env=env, program="heatlens-explain")
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    else:
        done = run_entry_point(["-m", "heatlens.cli.explain", *args], env)
    child_id = done.stdout.split("into child run ")[1].split()[0]
    return Run(run.client, child_id, out)


@pytest.mark.slow
def test_ddp_explanations_equal_single_process_on_the_same_checkpoint(trained: Run, trained_run: TrainedRun,
                                                                     store: dict[str, str], tmp_path: Path) -> None:
    env = {**store, **trained_run.env}
    single = _reexplain(env, trained, "cpu", tmp_path / "single")
    double = _reexplain(env, trained, "ddp_cpu", tmp_path / "ddp")
    # The shared run's store may hold other tests' children: this test's are those written under tmp_path.
    children = trained.client.search_runs([trained.client.get_run(trained.run_id).info.experiment_id],
                                          f"tags.`mlflow.parentRunId` = '{trained.run_id}'")
    ours = {r.info.run_id for r in children if r.data.tags.get("output_dir", "").startswith(str(tmp_path))}
    assert ours == {single.run_id, double.run_id}  # exactly one run per job

    xai = {k for k in single.data.metrics if k.startswith("xai/")}
    assert xai == {k for k in double.data.metrics if k.startswith("xai/")} and len(xai) > 20
    for key in xai:
        np.testing.assert_allclose(double.data.metrics[key], single.data.metrics[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    for path, keys in {"explain/gradcam.npz": ("ids", "heatmaps", "probabilities"),
                       "explain/heatmap_stats.npz": ("mean_grid", "box_summaries"),
                       "explain/aopc.npz": ("ids", "curves_morf", "curves_lerf", "curves_random"),
                       "explain/localisation.npz": ("ids", "lesion__auc", "lung__relevance_mass_accuracy"),
                       "explain/embeddings.npz": ("ids", "embeddings")}.items():
        one, two = single.npz(path), double.npz(path)
        for key in keys:
            if one[key].dtype.kind in "fc":
                np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-5, err_msg=f"{path}:{key}")
            else:
                assert np.array_equal(two[key], one[key]), f"{path}:{key}"
    assert len(single.npz("explain/gradcam.npz")["ids"]) == 51  # the repeated sample counted once


def test_reexplaining_an_unknown_run_is_one_clear_error(store: dict[str, str]) -> None:
    cfg = OmegaConf.create({"run_id": "0123abc", "checkpoint": None, "data": {},
                            "explain": {"max_images": 256, "sample": "stratified", "callbacks": {}},
                            "logger": {"tracking_uri": store["MLFLOW_TRACKING_URI"]}})
    with pytest.raises(ReexplainError, match="run_id=0123abc is not a run of"):
        reexplain(cfg)
