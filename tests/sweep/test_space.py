"""The search space in Hydra's override syntax becomes the Optuna distributions Hydra's grammar means,
and sampled values go back through Hydra's own parser unchanged."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from heatlens.sweep import SweepConfigError, parse_search_space, trial_overrides
from heatlens.sweep.space import check_pretrained_questions, representative_overrides


def test_each_sweep_form_becomes_the_distribution_hydra_means() -> None:
    space = parse_search_space(
        {
            "optimizer.lr": "tag(log, interval(1.0e-5, 1.0e-2))",
            "optimizer.momentum": "interval(0.5, 0.99)",
            "data.batch_size": "choice(16, 32, 64)",
            "backbone": "vgg16,resnet50",
            "trainer.max_epochs": "range(2, 11, 3)",
            "head.dropout": "range(0.0, 0.5, 0.25)",
            "model.depth": "int(interval(1, 8))",
            "seed": "shuffle(range(1, 4))",
        },
        [],
    )
    d = space.distributions
    assert d["optimizer.lr"] == FloatDistribution(1e-5, 1e-2, log=True)
    assert d["optimizer.momentum"] == FloatDistribution(0.5, 0.99)
    assert d["data.batch_size"] == CategoricalDistribution([16, 32, 64])
    assert d["backbone"] == CategoricalDistribution(["vgg16", "resnet50"])
    # Hydra's range excludes stop: range(2, 11, 3) is 2, 5, 8.
    assert d["trainer.max_epochs"] == IntDistribution(2, 8, step=3)
    assert d["head.dropout"] == FloatDistribution(0.0, 0.25, step=0.25)
    assert d["model.depth"] == IntDistribution(1, 8)
    assert d["seed"] == CategoricalDistribution([1, 2, 3])
    assert space.fixed == ()


def test_the_command_line_overrides_params_and_fixed_values_pass_through() -> None:
    space = parse_search_space(
        {"optimizer.lr": "tag(log, interval(1e-5, 1e-2))", "data.batch_size": "choice(16, 32)"},
        ["data.batch_size=8", "optimizer.lr=interval(0.1, 0.2)", "+extra='a b'", "~callbacks"],
    )
    assert space.distributions == {"optimizer.lr": FloatDistribution(0.1, 0.2)}
    assert space.fixed == ("data.batch_size=8", "+extra='a b'", "~callbacks")


@pytest.mark.parametrize(
    "value", [16, 0.000123, 1e-5, True, False, None, "none", "a b", "it's", "back\\slash", "end\\", "x,y", "=:"]
)
def test_a_sampled_value_reads_back_identically_through_hydras_parser(value) -> None:
    (line,) = trial_overrides({"key": value})
    parsed = OverridesParser.create().parse_override(line)
    assert not parsed.is_sweep_override()
    assert parsed.value() == value and type(parsed.value()) is type(value)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lr": "interval(0.1, 0.1)"}, "is empty"),
        ({"lr": "tag(log, interval(0.0, 1.0))"}, "not positive"),
        ({"x": "range(5, 1)"}, "start < stop"),
        ({"x": "glob(*)"}, "not a search space"),
        ({"x": "choice([1, 2], [3])"}, "numbers, booleans or strings"),
        ({"x": "choice(1"}, "cannot parse"),
    ],
)
def test_a_bad_search_space_is_one_line_naming_the_key(params, fragment) -> None:
    with pytest.raises(SweepConfigError, match=fragment) as err:
        parse_search_space(params, [])
    assert "hydra.sweeper.params" in str(err.value) and "\n" not in str(err.value)


def test_representative_overrides_take_one_value_of_every_searched_key() -> None:
    space = parse_search_space({"lr": "interval(0.1, 0.2)", "b": "choice(x, y)"}, ["fixed=1"])
    assert representative_overrides(space) == ["fixed=1", "lr=0.1", "b='x'"]


def test_freezing_is_asked_only_of_a_backbone_with_pretrained_weights() -> None:
    space = parse_search_space({"backbone.freeze": "choice(none, backbone)"}, [])
    scratch = {"name": "simple_cnn", "pretrained": False, "weights_file": None}
    with pytest.raises(SweepConfigError, match="simple_cnn has no pretrained weights"):
        check_pretrained_questions(space, scratch)
    check_pretrained_questions(space, {**scratch, "name": "resnet50", "pretrained": True})
    check_pretrained_questions(space, {**scratch, "weights_file": "/w/simple_cnn.pth"})
    check_pretrained_questions(parse_search_space({"optimizer.lr": "interval(0.1, 0.2)"}, []), scratch)
