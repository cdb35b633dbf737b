"""What the entry points print: the headline table of a run's metrics, and the library chatter that
`quiet_console` filters (and only that)."""

from __future__ import annotations

import logging
import warnings

import pytest
from rich.console import Console

from heatlens.cli.console import QUIET_LOGGERS, TIP_LOGGERS, headline_table, quiet_console
from heatlens.report.headline import headline_rows

METRICS = {
    "test/acc": 0.97504,
    "test/recall_macro": 0.9678,
    "xai/aopc_morf": 0.7312,
    "xai/aopc_lerf": 0.4849,
    "xai/loc/lung/relevance_mass_accuracy": 0.61,
    "xai/loc/lung/uniform_relevance_mass_accuracy": 0.42,
    "xai/loc/lesion/relevance_mass_accuracy": 0.1164,
    "xai/loc/lesion/uniform_relevance_mass_accuracy": 0.0331,
    "xai/knn_acc_embedding": 0.97,
    "xai/knn_acc_raw": 0.4612,
    "test/loss": 0.1,
}


def test_headline_rows_round_to_three_digits_and_leave_missing_metrics_out() -> None:
    rows = [(r.label, r.formatted(), r.reference) for r in headline_rows(METRICS)]
    assert rows == [
        ("test accuracy", "0.975", ""),
        ("test macro recall", "0.968", ""),
        ("AOPC MoRF", "0.731", ""),
        ("AOPC LeRF", "0.485", ""),  # no AOPC random logged: no row
        ("relevance mass in lesion masks", "0.116", "uniform map 0.033"),
        ("relevance mass in lung masks", "0.610", "uniform map 0.420"),
        ("k-NN accuracy on embeddings", "0.970", "raw pixels 0.461"),
    ]
    assert headline_rows({"test/loss": 0.3}) == []
    assert headline_table({}) is None


def test_multilabel_headline_leads_with_macro_auroc_and_multiclass_does_not() -> None:
    multilabel = {"test/auroc_macro": 0.9612, "test/ap_macro": 0.874, "xai/aopc_morf": 0.3}
    assert [(r.label, r.formatted()) for r in headline_rows(multilabel)] == [
        ("test macro AUROC", "0.961"), ("test macro average precision", "0.874"), ("AOPC MoRF", "0.300")]
    multiclass = {**METRICS, "test/auroc_macro": 0.99}
    assert [r.label for r in headline_rows(multiclass)] == [r.label for r in headline_rows(METRICS)]


def test_headline_table_prints_one_line_per_number() -> None:
    console = Console(record=True, width=100)
    console.print(headline_table(METRICS))
    lines = [line.rstrip() for line in console.export_text().splitlines() if line.strip()]
    assert lines[0] == "Headline numbers"
    assert lines[1].split() == ["test", "accuracy", "0.975"]
    assert lines[5].split()[-5:] == ["0.116", "vs", "uniform", "map", "0.033"]
    assert len(lines) == 8


@pytest.fixture
def restored_logging():
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    for name in TIP_LOGGERS:
        logging.getLogger(name).filters.clear()


def test_quiet_console_drops_the_noise_and_keeps_the_rest(restored_logging, caplog) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_console()
        quiet_console()  # twice: still one filter per logger
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
        warnings.warn("something the user must know", FutureWarning)
    assert [str(w.message) for w in caught] == ["something the user must know"]

    tips = logging.getLogger(TIP_LOGGERS[0])
    assert len(tips.filters) == 1
    caplog.set_level(logging.INFO)
    tips.info("\N{ELECTRIC LIGHT BULB} Tip: For seamless cloud logging, try installing [litlogger](...)")
    tips.info("GPU available: False, used: False")
    logging.getLogger("openTSNE.tsne").info("Precomputed affinities provided. Ignoring perplexity-related parameters.")
    logging.getLogger("openTSNE.tsne").warning("a real openTSNE problem")
    logging.getLogger("saliency.core.xrai").info("Computing IG...")  # XRAI, twice per image
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False", "a real openTSNE problem"]
