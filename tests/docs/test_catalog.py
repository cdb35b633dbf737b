"""heatlens.catalog: its patterns match what they say, every name a real trained run logs is in it, and
the names the headline table and the docs read come from it."""

from __future__ import annotations

import pytest

from heatlens import catalog
from heatlens.report import headline, tables


def test_patterns_match_their_placeholders_only() -> None:
    recall = catalog.find("metric", "test/recall/Viral Pneumonia")
    assert recall is not None and recall.name == "test/<score>/<Class>"  # class names keep their spaces
    assert catalog.find("metric", "test/tpr/COVID") is None  # <score> is a closed set
    assert catalog.find("metric", "test/recall/COVID/extra") is None  # a placeholder never spans a `/`
    assert catalog.find("artifact", "model/data/model.pth").name == "model/<path>"  # `<path>` does
    assert catalog.find("metric", "xai/loc/lesion/pointing_game").name == "xai/loc/<kind>/<localisation score>"
    assert catalog.find("metric", "xai/loc/lesion/made_up_score") is None
    assert catalog.find("metric", "time/attributions_saliency_s").name == "time/attributions_<method>_s"
    assert catalog.uncatalogued("tag", {"backbone", "mlflow.runName", "nobody_sets_this"}) == ["nobody_sets_this"]
    with pytest.raises(ValueError, match="kind='metrics'"):
        catalog.entries("metrics")


def test_every_entry_is_complete_and_unique() -> None:
    seen = set()
    for entry in catalog.NAMES:
        assert entry.kind in catalog.KINDS and entry.meaning and entry.source, entry
        assert (entry.kind, entry.name) not in seen, f"{entry.kind} {entry.name} listed twice"
        seen.add((entry.kind, entry.name))


def test_the_headline_and_report_tables_read_catalogued_names() -> None:
    names = [key for _, key, _ in headline.PLAIN] + [headline.KNN[1], headline.KNN[2][1]]
    names += [headline.MASS.format(kind="lesion"), headline.UNIFORM_MASS.format(kind="lung")]
    names += list(tables.MODEL_METRICS.values())
    names += [f"xai/shortcut/COVID/{score}" for score in tables.SHORTCUT_SCORES]
    names += [f"test/op_{rate}/COVID" for rate in tables.OPERATING_RATES]
    assert catalog.uncatalogued("metric", names) == []


@pytest.mark.slow
def test_everything_a_trained_run_logs_is_in_the_catalogue(trained_run) -> None:
    data = trained_run.data
    every = {"param": set(data.params), "tag": set(data.tags), "metric": set(data.metrics),
             "artifact": trained_run.artifacts("")}
    assert len(every["metric"]) > 100 and len(every["artifact"]) > 30  # explain=full logged its steps
    missing = {kind: catalog.uncatalogued(kind, names) for kind, names in every.items()}
    assert missing == {kind: [] for kind in catalog.KINDS}, missing
