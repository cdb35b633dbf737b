"""What the report knows about one run: MLflow numbers plus the stored explanation arrays (no mlflow here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from heatlens.report.errors import CompareError

PERTURBATION_ORDERS = ("morf", "lerf", "random")
# Run tag of a model that predicts fewer classes than its test set holds (heatlens.tracking.reports).
DEGENERATE_TAG = "heatlens.degenerate"


def degenerate_note(labels: np.ndarray, preds: np.ndarray, class_names: list[str]) -> str | None:
    """'predicts 1 of 4 classes on the test set (only Normal)' when the predictions cover fewer classes than
    the labels do; None otherwise, and for multi-label (N, K) labels, which have no single prediction."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    if labels.ndim != 1 or not len(labels):
        return None
    present, predicted = np.unique(labels), np.unique(preds)
    if len(predicted) >= len(present):
        return None
    names = ", ".join(class_names[int(c)] if int(c) < len(class_names) else str(c) for c in predicted)
    return f"predicts {len(predicted)} of {len(present)} classes on the test set (only {names})"


@dataclass
class HeatmapSet:
    """Raw Grad-CAM at feature resolution with its own rows: maps (N, C, h, w) for every class, or (N, h, w);
    thumbnails (N, t, t[, c]) uint8: the explained images, small, when the run stored them."""

    ids: np.ndarray
    maps: np.ndarray
    labels: np.ndarray
    preds: np.ndarray | None = None
    thumbnails: np.ndarray | None = None

    def rows_for(self, wanted_ids: np.ndarray) -> np.ndarray:
        return _positions(self.ids, wanted_ids)


@dataclass
class ShortcutClusters:
    """The shortcut audit's per-image result (`explain/shortcut.npz`): SpRAy cluster within the image's
    true class and whether that cluster is suspect; labels from the file or the prediction table."""

    ids: np.ndarray
    cluster: np.ndarray
    suspect: np.ndarray
    labels: np.ndarray | None = None


@dataclass
class ExplainArrays:
    """Per-test-image arrays of a run. `ids/labels/preds/probs` is the widest prediction table
    (usually the whole test set); heatmaps and curves keep their own rows (often a subset)."""

    ids: np.ndarray
    labels: np.ndarray | None = None
    preds: np.ndarray | None = None
    probs: np.ndarray | None = None
    heatmaps: HeatmapSet | None = None
    # order ("morf" | "lerf" | "random") -> (M, L+1) curves of the images `curve_ids[order]`.
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    curve_ids: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: list[str] | None = None
    shortcut: ShortcutClusters | None = None

    def rows_for(self, wanted_ids: np.ndarray) -> np.ndarray:
        """Row positions of `wanted_ids` in the prediction table (every one must be present)."""
        return _positions(self.ids, wanted_ids)


def _positions(ids: np.ndarray, wanted_ids: np.ndarray) -> np.ndarray:
    lookup = {sample_id: row for row, sample_id in enumerate(ids.tolist())}
    missing = [i for i in wanted_ids.tolist() if i not in lookup]
    if missing:
        raise CompareError(f"sample ids not among the run's arrays: {missing[:5]}")
    return np.array([lookup[i] for i in wanted_ids.tolist()], dtype=np.int64)


@dataclass
class RunData:
    """One run to compare: its MLflow params/metrics/tags and its explanation arrays (if any)."""

    run_id: str
    name: str
    experiment_id: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    test_hash: str | None = None
    arrays: ExplainArrays | None = None

    @property
    def label(self) -> str:
        """Short unique-ish label for tables and legends."""
        return f"{self.name} ({self.run_id[:6]})"

    @property
    def backbone(self) -> str:
        return self.tags.get("backbone") or self.params.get("backbone.name") or "?"

    @property
    def degenerate(self) -> str | None:
        """The run's degenerate tag, else the same check on its stored predictions (runs logged before the tag)."""
        if self.tags.get(DEGENERATE_TAG):
            return self.tags[DEGENERATE_TAG]
        if self.arrays is None or self.arrays.labels is None or self.arrays.preds is None:
            return None
        return degenerate_note(self.arrays.labels, self.arrays.preds, self.class_names)

    @property
    def class_names(self) -> list[str]:
        """Class names, from the arrays if stored, else from the `test/recall/<Class>` metrics."""
        if self.arrays is not None and self.arrays.class_names:
            return list(self.arrays.class_names)
        prefix = "test/recall/"
        return sorted(k[len(prefix) :] for k in self.metrics if k.startswith(prefix))

    def require_arrays(self, what: str) -> ExplainArrays:
        if self.arrays is None:
            raise CompareError(f"run {self.label} has no explain/*.npz arrays, needed for {what}")
        return self.arrays

    def aopc_values(self, order: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids, per-image AOPC) for one perturbation order, or None when the run stored no curves."""
        from heatlens.report.metrics import aopc_per_image

        if self.arrays is None or order not in self.arrays.curves:
            return None
        values = aopc_per_image(self.arrays.curves[order])
        # NaN rows are images the run did not score (e.g. misclassified under aopc.correct_only).
        scored = np.isfinite(values)
        return self.arrays.curve_ids[order][scored], values[scored]


# Array names as the explanation callbacks and tracking.reports write them: predictions ("predictions")
# and probabilities ("probabilities") in explain/*.npz, probabilities ("probs") in reports/test_predictions.npz.
PROBS = ("probs", "probabilities")
SHORTCUT_KEYS = ("ids", "cluster", "suspect")


def _probs(arrays: Mapping[str, np.ndarray]) -> np.ndarray | None:
    return next((arrays[name] for name in PROBS if name in arrays), None)


def explain_arrays_from_npz(files: Mapping[str, Mapping[str, np.ndarray]]) -> ExplainArrays | None:
    """Merge a run's npz files (file stem -> arrays): `explain/*.npz` and `reports/test_predictions.npz`.

    Every file's rows follow its own `ids`. The prediction table comes from the file with the most
    ids holding labels and predictions (or probabilities); heatmaps (and thumbnails) from the file
    holding them; curves are keyed `curves_<order>` with the rows of that file's `ids`.
    """
    tables = [a for a in files.values() if "ids" in a]
    predicting = [a for a in tables if "labels" in a and ("predictions" in a or _probs(a) is not None)]
    if not predicting:
        return None
    table = max(predicting, key=lambda a: len(a["ids"]))
    probs = _probs(table)
    preds = table["predictions"] if "predictions" in table else probs.argmax(axis=1)
    arrays = ExplainArrays(ids=_ids_of(table), labels=_labels(table["labels"]), preds=_int(preds), probs=probs)
    for source in tables:
        if "heatmaps" in source and "labels" in source and arrays.heatmaps is None:
            arrays.heatmaps = HeatmapSet(
                _ids_of(source), source["heatmaps"], _int(source["labels"]),
                _int(source["predictions"]) if "predictions" in source else None, source.get("thumbnails"),
            )
        for order in PERTURBATION_ORDERS:
            if f"curves_{order}" in source:
                arrays.curves[order] = np.asarray(source[f"curves_{order}"], dtype=np.float64)
                arrays.curve_ids[order] = _ids_of(source)
        if all(key in source for key in SHORTCUT_KEYS):
            arrays.shortcut = ShortcutClusters(
                _ids_of(source), _int(source["cluster"]), np.asarray(source["suspect"]).astype(bool),
                _int(source["labels"]) if "labels" in source else None,
            )
    class_names = next((a["class_names"] for a in files.values() if "class_names" in a), None)
    if class_names is not None:
        arrays.class_names = [str(c) for c in class_names.tolist()]
    return arrays


def _ids_of(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.asarray(arrays["ids"]).astype(str)


def _int(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).astype(np.int64)


def _labels(values: np.ndarray) -> np.ndarray:
    """Class indices, or (multi-label) the (N, K) float matrix of 1 / 0 / NaN as stored."""
    values = np.asarray(values)
    return values.astype(np.float64) if values.ndim == 2 else values.astype(np.int64)


def select_run(runs: list[RunData], key: str) -> RunData:
    """The run whose id, id prefix (>= 6 characters) or name is `key`; a clear error otherwise."""
    key = str(key)
    matches = [r for r in runs if r.run_id == key or r.name == key or (len(key) >= 6 and r.run_id.startswith(key))]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(r.label for r in runs) or "none"
    problem = "matches several runs" if matches else "matches no run"
    raise CompareError(f"pair entry {key!r} {problem} among the compared runs ({known}); use a run id")
