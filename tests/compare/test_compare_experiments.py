"""The seed protocols' `experiment=` configs: each composes as the protocol says (every backbone of
its sweep included) and all four smoke-run on tiny phantom data in one multirun."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from sweeps import TINY, compare_config, tail, train

from heatlens.cli.compare import compare
from heatlens.paths import CONFIG_DIR
from heatlens.report import CompareError

EXPERIMENTS = ("covid_aopc", "coronahack_eigen", "nine_backbones", "covid_resnet")
NINE = [
    "vgg16",
    "vgg19",
    "resnet50",
    "resnet50v2",
    "inception_v3",
    "xception",
    "efficientnet_b0",
    "densenet121",
    "inception_resnet_v2",
]
# Per protocol: (expected backbones of its sweep, {config key: value}).
PROTOCOLS = {
    "covid_aopc": (
        ["vgg16", "densenet201"],
        {
            "data.name": "covid_radiography",
            "data.balance": "downsample",
            "data.split": [0.8, 0.1, 0.1],
            "head.name": "pool_mlp",
            "backbone.freeze": "backbone",
            "optimizer._target_": "torch.optim.Adam",
            "trainer.max_epochs": 20,
            "selection_metric": "val/recall_disease_mean",
            "explain.aopc.region_size": 34,
            "explain.aopc.perturbation": "gaussian_noise",
            "explain.aopc.sigma": 0.1,
            "explain.aopc.correct_only": True,
        },
    ),
    "coronahack_eigen": (
        None,
        {
            "data.name": "coronahack",
            "data.split": [0.8, 0.2],
            "backbone.name": "vgg19",
            "head.name": "gap_linear",
            "backbone.freeze": "all_but_last_block",
            "optimizer._target_": "torch.optim.RMSprop",
            "optimizer.lr": 1e-4,
            "trainer.max_epochs": 20,
        },
    ),
    "nine_backbones": (
        NINE,
        {
            "data.name": "brain_tumor",
            "data.channels": 1,
            "data.image_size": 225,
            "data.split": [0.7, 0.3],
            "data.balance": "class_weights",
            "data.batch_size": 32,
            "optimizer._target_": "torch.optim.SGD",
            "optimizer.lr": 1e-3,
            "optimizer.momentum": 0.939,
            "optimizer.weight_decay": 3e-4,
            "trainer.max_epochs": 20,
        },
    ),
    "covid_resnet": (
        ["resnet50", "densenet121", "simple_cnn"],
        {
            "data.name": "covid_radiography",
            "optimizer._target_": "torch.optim.Adam",
            "optimizer.lr": 1e-4,
            "head.dropout": 0.5,
            "data.batch_size": 32,
        },
    ),
}


def composed(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def select(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return list(node) if hasattr(node, "__len__") and not isinstance(node, str) else node


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_as_its_protocol(experiment):
    backbones, expected = PROTOCOLS[experiment]
    cfg = composed([f"experiment={experiment}"])
    for key, value in expected.items():
        assert select(cfg, key) == value, key
    assert cfg.logger.experiment_name == experiment
    sweep = cfg.hydra.sweeper.params
    assert (sweep.backbone.split(",") if sweep else None) == backbones
    for backbone in backbones or []:
        # Compose-only for the heavy backbones: the protocol's settings survive the backbone choice.
        each = composed([f"experiment={experiment}", f"backbone={backbone}"])
        assert each.backbone.name == backbone
        assert each.optimizer._target_ == expected["optimizer._target_"]
        assert each.backbone.freeze == expected.get("backbone.freeze", "none")


def test_nine_backbones_turns_on_attributions_and_tsne():
    callbacks = composed(["experiment=nine_backbones"]).explain.callbacks
    assert {"attributions", "embeddings", "gradcam"} <= set(callbacks)


@pytest.mark.slow
def test_all_protocols_smoke_run_on_phantom_data(mlflow_root, tmp_path):
    client, uri, _ = mlflow_root
    result = train(
        [
            "-m",
            f"experiment={','.join(EXPERIMENTS)}",
            "data=phantom",
            "backbone=simple_cnn",
            "backbone.pretrained=false",
            "explain.aopc.region_size=8",
            "logger.experiment_name=protocols",
            *TINY,
        ],
        uri,
        tmp_path,
    )
    assert result.returncode == 0, tail(result)
    experiment = client.get_experiment_by_name("protocols")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.info.status for r in runs] == ["FINISHED"] * 4
    params = [r.data.params for r in runs]
    assert [(p["head.name"], p["optimizer._target_"]) for p in params] == [
        ("pool_mlp", "torch.optim.Adam"),
        ("gap_linear", "torch.optim.RMSprop"),
        ("timm", "torch.optim.SGD"),
        ("gap_linear", "torch.optim.Adam"),
    ]
    assert params[0]["data.balance"] == "downsample" and params[2]["data.balance"] == "class_weights"
    artifacts = [{a.path for a in client.list_artifacts(r.info.run_id, "explain")} for r in runs]
    assert "explain/aopc.npz" in artifacts[0]
    assert "explain/heatmap_stats.npz" in artifacts[1]
    assert {"explain/attributions.npz", "explain/embeddings.npz"} <= artifacts[2]
    # TINY says logger.figures=false: the arrays and reports are there, no figure was rendered.
    for run in runs:
        top = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "reports" in top and "figures" not in top and "summary.png" not in top
    # Different splits and balancing: the comparison refuses to pair covid_aopc with coronahack_eigen.
    pair = f"[{runs[0].info.run_id},{runs[1].info.run_id}]"
    cfg = compare_config(tmp_path / "report", experiment_name="protocols", tracking_uri=uri,
                         log_to_mlflow="false", pair=pair)
    with pytest.raises(CompareError, match="test sets differ"):
        compare(cfg)
