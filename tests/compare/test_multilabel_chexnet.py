"""`experiment=chexnet`: composes as the CheXNet protocol says, smoke-runs on the multi-label phantom like
the other seed protocols, and two such runs compare with a paired bootstrap of AUROC per finding."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from sweeps import TINY, compare_config, tail, train

from heatlens.cli.compare import compare
from heatlens.data.phantom_multilabel import FINDINGS
from heatlens.paths import CONFIG_DIR


def test_chexnet_composes_as_its_protocol() -> None:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=chexnet"])
    assert (cfg.data.name, cfg.data.task, cfg.data.image_size, cfg.data.channels) == ("chestxray14", "multilabel", 224, 3)
    assert cfg.data.findings is None  # all 14 findings, the official split lists
    assert (cfg.backbone.name, cfg.backbone.pretrained) == ("densenet121", True)
    assert (cfg.optimizer._target_, cfg.optimizer.lr) == ("torch.optim.Adam", 1e-3)
    assert (cfg.scheduler.factor, cfg.scheduler.monitor) == (0.1, "val/loss")
    assert cfg.data.augment.HorizontalFlip.p == 0.5 and cfg.data.augment.Affine is None
    assert cfg.selection_metric is None  # filled from data.task at check time: val/auroc_macro


@pytest.mark.slow
def test_chexnet_smoke_runs_on_the_multilabel_phantom_and_compares_per_finding(mlflow_root, tmp_path) -> None:
    client, uri, _ = mlflow_root
    result = train(["-m", "experiment=chexnet", "data=phantom", "data.task=multilabel", "backbone=simple_cnn",
                    "backbone.pretrained=false", "seed=0,1", "explain.aopc.region_size=8",
                    "logger.experiment_name=chexnet-smoke", *TINY], uri, tmp_path)
    assert result.returncode == 0, tail(result)
    experiment = client.get_experiment_by_name("chexnet-smoke")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.info.status for r in runs] == ["FINISHED"] * 2
    params, metrics = runs[0].data.params, runs[0].data.metrics
    assert params["selection_metric"] == "val/auroc_macro" and params["optimizer.lr"] == "0.001"
    assert {f"test/auroc/{f}" for f in FINDINGS} | {"test/auroc_macro", "test/ap_macro"} <= set(metrics)
    assert "test/recall_macro" not in metrics and "train/acc" not in metrics
    index = client.download_artifacts(runs[0].info.run_id, "checkpoints/index.json", str(tmp_path))
    assert '"val/auroc/Viral Pneumonia"' in open(index).read()

    pair = f"[{runs[0].info.run_id},{runs[1].info.run_id}]"
    cfg = compare_config(tmp_path / "report", experiment_name="chexnet-smoke", tracking_uri=uri,
                         log_to_mlflow="false", pair=pair, **{"bootstrap.n": 200})
    report = (compare(cfg) / "report.md").read_text()
    for finding in FINDINGS:
        assert f"auroc/{finding}" in report
