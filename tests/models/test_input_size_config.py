"""data.image_size follows the backbone's native input size unless the data's own default or the user decides.

Composed with Hydra's compose API, as `python train.py ...` composes.
"""

from __future__ import annotations

import pytest
import timm
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from heatlens.models import backbone_spec
from heatlens.paths import CONFIG_DIR

REAL_DATA = sorted(p.stem for p in (CONFIG_DIR / "data").glob("*.yaml") if p.stem != "phantom")
# Every preset but the own simple_cnn and `timm` (any model by name, no native size of its own).
TIMM_BACKBONES = sorted(p.stem for p in (CONFIG_DIR / "backbone").glob("*.yaml") if p.stem not in ("simple_cnn", "timm"))


def image_size(*overrides: str) -> int:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides)).data.image_size


def test_every_timm_backbone_sets_timm_s_native_input_size() -> None:
    sizes = {name: image_size(f"backbone={name}") for name in TIMM_BACKBONES}
    for name, size in sizes.items():
        native = timm.models.get_pretrained_cfg(backbone_spec(name).timm_name).input_size
        assert size == native[-1] == native[-2], name
    assert {name for name, size in sizes.items() if size != 224} == {"inception_v3", "xception", "inception_resnet_v2", "efficientnetv2_s"}
    assert sizes["inception_v3"] == 299


@pytest.mark.parametrize("data", ["phantom", *REAL_DATA])
def test_native_size_wins_over_each_data_default(data: str) -> None:
    assert image_size(f"data={data}", "backbone=inception_v3") == 299


def test_simple_cnn_keeps_the_data_default() -> None:
    assert image_size() == image_size("backbone=simple_cnn") == 64  # phantom: small and fast
    for data in REAL_DATA:
        assert image_size(f"data={data}", "backbone=simple_cnn") == 224, data


def test_the_command_line_and_experiments_win() -> None:
    assert image_size("backbone=densenet201", "data.image_size=96") == 96
    assert image_size("data.image_size=96", "backbone=inception_v3") == 96  # order on the command line is irrelevant
    # nine_backbones trains everything at 225 px, inception_v3 included.
    assert image_size("experiment=nine_backbones") == image_size("experiment=nine_backbones", "backbone=inception_v3") == 225
    assert image_size("experiment=covid_aopc", "backbone=densenet201", "data=phantom", "data.image_size=64") == 64


def test_a_backbone_sweep_composes_each_backbone_with_its_size() -> None:
    """`-m backbone=vgg16,xception`: Hydra's basic sweeper splits the jobs; each composes with its own size."""
    overrides = OverridesParser.create().parse_overrides(["backbone=vgg16,xception", "data=covid_radiography"])
    (batch,) = BasicSweeper.split_arguments(overrides, None)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        jobs = [compose("train", overrides=job) for job in batch]
    assert [(job.backbone.name, job.data.name, job.data.image_size) for job in jobs] == [
        ("vgg16", "covid_radiography", 224), ("xception", "covid_radiography", 299)]


def test_any_timm_model_by_name_gets_its_native_size() -> None:
    from heatlens.paths import register_resolvers

    register_resolvers()
    assert image_size("backbone=timm", "backbone.name=vit_small_patch16_384") == 384
    assert image_size("backbone=timm", "backbone.name=convnext_nano") == 224
    assert image_size("backbone=timm", "backbone.name=convnext_nano", "data.image_size=48") == 48
