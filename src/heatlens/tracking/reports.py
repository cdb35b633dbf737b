"""After the test pass: reports, figures and operating points of the selected checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from heatlens.clinical import ClinicalEvaluation, ClinicalSettings
from heatlens.models.evaluation import (
    classification_report,
    confusion_matrix,
    multilabel_confusions,
    multilabel_report,
    roc_curves,
)
from heatlens.plots.training import confusion_matrix_figure, recall_history_figure, roc_figure
from heatlens.tracking.clinical import log_clinical_reports
from heatlens.tracking.describe import flag_degenerate
from heatlens.tracking.errors import TrackingError
from heatlens.tracking.run import RunHandle
from heatlens.tracking.setup import UPLOAD_POLICIES


def log_test_reports(
    run: RunHandle,
    class_names: Sequence[str],
    healthy_class: str | None,
    test: dict[str, np.ndarray],
    val: dict[str, np.ndarray],
    test_ids: Sequence[str],
    test_hash: str | None,
    selected_epoch: int | None,
    clinical: ClinicalSettings | None = None,
    seed: int = 0,
) -> ClinicalEvaluation:
    """Log every report of a finished run (docs/reference/mlflow-names.md) from test/val `probs`, `labels`,
    `index`, and the clinical numbers (docs/guides/clinical-numbers.md: calibration, operating points,
    risk-coverage; `test` may hold
    `tta_probs`); returns those (temperature and thresholds for the served model)."""
    class_names = list(class_names)
    if np.ndim(test["labels"]) == 2:
        _log_multilabel_reports(run, class_names, test, selected_epoch)
    else:
        _log_multiclass_reports(run, class_names, test, selected_epoch)
        flag_degenerate(run, test["labels"], test["probs"], class_names)
    evaluation = log_clinical_reports(run, class_names, healthy_class, test, val, clinical or ClinicalSettings(),
                                      seed)

    ids = np.asarray(test_ids)[test["index"]]
    run.log_dict({"hash": test_hash, "count": len(test_ids), "ids": list(map(str, test_ids))}, "reports/test_set.json")
    if test_hash:
        run.set_tags({"test_hash": test_hash})
    run.log_arrays("reports/test_predictions.npz", ids=ids, labels=test["labels"], probs=test["probs"],
                   class_names=np.asarray(class_names))
    return evaluation


def _log_multilabel_reports(run: RunHandle, finding_names: list[str], test: dict[str, np.ndarray],
                            selected_epoch: int | None) -> None:
    """Per finding: the report at p >= 0.5, 2x2 counts, ROC curves and the validation AUROC history."""
    text, report = multilabel_report(test["labels"], test["probs"], finding_names)
    run.log_text(text, "reports/classification_report.txt")
    run.log_dict(report, "reports/classification_report.json")
    counts = multilabel_confusions(test["labels"], test["probs"])
    run.log_dict({"class_names": finding_names, "task": "multilabel", "counts": counts.tolist()},
                 "reports/confusion_matrix.json")
    curves = roc_curves(test["labels"], test["probs"], finding_names)
    run.log_dict({name: c["auc"] for name, c in curves.items()}, "reports/roc_auc.json")
    run.log_figure(lambda: roc_figure(curves, class_names=finding_names), "figures/roc.png")
    keys = {name: f"val/auroc/{name}" for name in finding_names} | {"macro mean": "val/auroc_macro"}
    run.log_figure(lambda: recall_history_figure(_history(run, keys), selected_epoch,
                                                 title="Validation AUROC per finding", ylabel="AUROC"),
                   "figures/val_auroc_history.png")


def _log_multiclass_reports(run: RunHandle, class_names: list[str], test: dict[str, np.ndarray],
                            selected_epoch: int | None) -> None:
    text, report = classification_report(test["labels"], test["probs"], class_names)
    run.log_text(text, "reports/classification_report.txt")
    run.log_dict(report, "reports/classification_report.json")

    counts = confusion_matrix(test["labels"], test["probs"], len(class_names))
    run.log_dict({"class_names": class_names, "counts": counts.tolist()}, "reports/confusion_matrix.json")
    run.log_figure(lambda: confusion_matrix_figure(counts, class_names, "Test confusion matrix"),
                   "figures/confusion_matrix.png")

    curves = roc_curves(test["labels"], test["probs"], class_names)
    run.log_dict({name: c["auc"] for name, c in curves.items()}, "reports/roc_auc.json")
    run.log_figure(lambda: roc_figure(curves, class_names=class_names), "figures/roc.png")

    keys = {name: f"val/recall/{name}" for name in class_names} | {"disease mean": "val/recall_disease_mean"}
    run.log_figure(lambda: recall_history_figure(_history(run, keys), selected_epoch), "figures/val_recall_history.png")


def _history(run: RunHandle, keys: dict[str, str]) -> dict[str, list[tuple[int, float]]]:
    """Series label -> (epoch, value) of each metric in `keys` (label -> metric name)."""
    # Lightning logs `epoch` at the same step as each validation metric: plot against epochs.
    epoch_at_step = dict(run.metric_history("epoch"))
    return {
        label: [(int(epoch_at_step.get(step, step)), value) for step, value in run.metric_history(key)]
        for label, key in keys.items()
    }


def log_checkpoints(
    run: RunHandle, files: dict[str, str], scores: dict[str, float | None], selected: str, upload: str = "selected"
) -> None:
    """Upload checkpoints to `checkpoints/` per `logger.upload_checkpoints` (`all`, `selected`: the one
    tested, `none`) and always `checkpoints/index.json`: every checkpoint (monitor -> local path,
    score, uploaded file or null) and the selected monitor. Tag `selected_checkpoint` names the
    uploaded file of the selected one."""
    if upload not in UPLOAD_POLICIES:
        raise TrackingError(f"logger.upload_checkpoints={upload!r}: expected one of {list(UPLOAD_POLICIES)}")
    uploaded = {m for m in files if upload == "all" or (upload == "selected" and m == selected)}
    index = {
        monitor: {
            "local_path": str(Path(path).resolve()),
            "score": scores.get(monitor),
            "file": f"checkpoints/{Path(path).name}" if monitor in uploaded else None,
        }
        for monitor, path in files.items()
    }
    for monitor in uploaded:
        run.log_artifact(files[monitor], "checkpoints")
    run.log_dict({"selected": selected, "upload": upload, "checkpoints": index}, "checkpoints/index.json")
    if selected in uploaded:
        run.set_tags({"selected_checkpoint": index[selected]["file"]})
