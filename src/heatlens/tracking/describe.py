"""What a run's MLflow page says first: its description, its datasets, and a degenerate model named."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import numpy as np
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from heatlens.data.splits import ids_hash
from heatlens.report.headline import run_description
from heatlens.report.runs import DEGENERATE_TAG, degenerate_note
from heatlens.tracking.run import RunHandle

log = logging.getLogger(__name__)
# MLflow's run description (the run page's "Description").
NOTE_TAG = "mlflow.note.content"
# MLflow's store keeps a dataset digest to 36 characters.
DIGEST_LENGTH = 36
# How SQLite, PostgreSQL and MySQL name a broken unique constraint in the store's error.
DUPLICATE = re.compile(r"unique constraint|duplicate", re.IGNORECASE)


def flag_degenerate(run: RunHandle, labels: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> str | None:
    """Warn and tag `heatlens.degenerate` when the test predictions cover fewer classes than the labels."""
    note = degenerate_note(labels, np.asarray(probs).argmax(axis=1), list(class_names))
    if note is not None:
        log.warning("the model %s (tag %s)", note, DEGENERATE_TAG)
        run.set_tags({DEGENERATE_TAG: note})
    return note


def log_datasets(run: RunHandle, split_ids: Mapping[str, Sequence[str]], root: str | None,
                 generator: Mapping[str, object]) -> None:
    """The splits as MLflow dataset inputs: name and context `<split>`, source the data root (else the phantom
    generator's settings), digest the split's id hash (for the test split, the start of tag `test_hash`)."""
    source = resolve_dataset_source(root) if root else CodeDatasetSource({"phantom": dict(generator)})
    inputs = [
        DatasetInput(MetaDataset(source, name=split, digest=ids_hash(list(ids))[:DIGEST_LENGTH])._to_mlflow_entity(),
                     [InputTag(MLFLOW_DATASET_CONTEXT, split)])
        for split, ids in split_ids.items()
    ]
    try:
        run.client.log_inputs(run.run_id, datasets=inputs)
    except MlflowException as error:
        # MLflow's store looks a dataset up, then inserts it: two jobs of a parallel sweep logging the same
        # split at once can both miss it, and the second insert breaks the unique constraint (its transaction
        # is rolled back). Once more, the dataset the other job created is found and linked.
        if error.error_code != "BAD_REQUEST" or not DUPLICATE.search(str(error)):
            raise
        log.info("dataset inputs created meanwhile by another run: linking them")
        run.client.log_inputs(run.run_id, datasets=inputs)


def describe_run(run: RunHandle) -> None:
    """Write the run's description (heatlens.report.headline.run_description) from what it logged."""
    data = run.client.get_run(run.run_id).data
    run.set_tags({NOTE_TAG: run_description(data.params, data.tags, data.metrics)})
