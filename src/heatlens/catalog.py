"""Every name heatlens logs to MLflow: params, tags, metrics and artifacts, with one line each.

This is the one source of the names: the docs page "Reference → MLflow names" is generated from it
on every build, and `tests/docs/test_catalog.py` checks that everything a real trained run logs, and
every name the console's headline table reads, matches an entry here. Importable anywhere (no MLflow,
no torch): code that needs a name may look it up with `find`.

To add a name, append one `Name(...)` line to `NAMES` in the section of its kind:

    Name("metric", "xai/my_score", "what it measures, in one line", "explain"),

- kind: "param", "tag", "metric" or "artifact";
- name: the exact name, or a pattern whose varying parts are `<placeholders>`: `test/recall/<Class>`,
  `figures/gradcam/<Class>.png`. A placeholder matches any text without a `/` (class names keep
  their spaces), `<path>` also across `/`, and a placeholder listed in `VALUES` only those values;
- meaning: one line, what the value is (units, range, what "good" looks like);
- source: which part logs it (a config group, an explanation step, `sweep`, `compare`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

KINDS = ("param", "tag", "metric", "artifact")


# Placeholders with a closed set of values: a pattern using one matches only these.
VALUES: dict[str, tuple[str, ...]] = {
    "score": ("precision", "recall", "f1", "auroc"),
    "average": ("macro", "weighted"),
    "step": ("gradcam", "aopc", "heatmap_stats", "embeddings", "tsne", "localisation", "attributions", "sanity",
             "shortcut", "explainers"),
    "measure": ("outside_mass", "border_mass", "n_clusters", "flag"),
    "calibration": ("ece", "mce", "ece_mass", "brier", "nll"),
    "calibration per class": ("ece_ovr", "mce_ovr", "ece_mass_ovr", "brier_ovr"),
    "rate": ("sensitivity", "specificity", "ppv", "npv"),
    "bound": ("low", "high"),
    "split": ("val", "test"),
    "localisation score": ("pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy",
                           "top_k_intersection", "top_k_iou", "auc", "uniform_relevance_mass_accuracy",
                           "box_iou", "hit_iou_0.1", "hit_iou_0.2", "hit_iou_0.3", "hit_iou_0.4", "hit_iou_0.5",
                           "hit_iou_0.6", "hit_iou_0.7"),
    "aopc order": ("morf", "lerf", "random"),
}


@dataclass(frozen=True)
class Name:
    kind: str
    name: str
    meaning: str
    source: str = "train"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(<[^>]+>)", self.name)
        regex = "".join(_placeholder(part[1:-1]) if part.startswith("<") else re.escape(part) for part in parts)
        return re.compile(f"^{regex}$")

    def matches(self, logged: str) -> bool:
        return self.pattern.match(logged) is not None


def _placeholder(name: str) -> str:
    if name in VALUES:
        return "(?:" + "|".join(map(re.escape, VALUES[name])) + ")"
    return ".+" if name == "path" else "[^/]+"


NAMES: tuple[Name, ...] = (
    # ---- params
    Name("param", "<config key>", "every key of the composed config, flattened Hydra-style (`optimizer.lr`, "
         "`data.image_size`); values over MLflow's 6000 characters are cut (the full config is "
         "`config/config.yaml`); see the config reference"),
    Name("param", "trial.number", "the Optuna trial number of a sweep job", "sweep"),
    # ---- tags of a training run
    Name("tag", "backbone", "the `backbone=` choice"),
    Name("tag", "dataset", "the `data=` choice"),
    Name("tag", "git_commit", "commit of the code that ran (`GIT_COMMIT` in Docker; `unknown` outside git)"),
    Name("tag", "sweep_id", "the sweep folder of a multirun; `none` for a single run"),
    Name("tag", "test_hash", "sha256 of the sorted test ids: runs with equal hashes were tested on the same images"),
    Name("tag", "selected_checkpoint", "the uploaded checkpoint file that was tested and explained"),
    Name("tag", "model_uri", "`runs:/<run id>/model`, the logged MLflow pyfunc model"),
    Name("tag", "output_dir", "the Hydra run folder of the job (checkpoints, logs)"),
    Name("tag", "resumed_from", "the `ckpt_path` a resumed job continued from"),
    Name("tag", "error", "one line: why the run FAILED (traceback in `reports/error.txt`)"),
    Name("tag", "selection_fallback", "why `last.ckpt` was tested instead of the `selection_metric` checkpoint"),
    Name("tag", "small_gradcam_map", "the Grad-CAM map size (`HxW`) when it is below 7×7"),
    Name("tag", "heatlens.degenerate", "set when the tested model predicts fewer classes than the test set holds: "
         "`predicts 1 of 4 classes on the test set (only Normal)`"),
    Name("tag", "mlflow.note.content", "the run's description in the MLflow UI: what it is and its headline table"),
    Name("tag", "explained_checkpoint", "the checkpoint a re-explained child run used", "heatlens-explain"),
    Name("tag", "mlflow.<system tag>", "MLflow's own tags: run name, user, source, parent run, logged models", "mlflow"),
    Name("tag", "heatlens.kind", "`sweep` (a sweep's parent run) or `compare_report` (a comparison report's run)",
         "sweep, compare"),
    # ---- tags of a sweep
    Name("tag", "pruned", "`true`: the pruner stopped this trial (status KILLED)", "sweep"),
    Name("tag", "pruned_reason", "the pruner's message for a pruned trial", "sweep"),
    Name("tag", "study_name", "the Optuna study of the sweep (parent run)", "sweep"),
    Name("tag", "study_storage", "where the study is stored (parent run)", "sweep"),
    Name("tag", "best_trial", "number of the best trial so far (parent run)", "sweep"),
    Name("tag", "best_run_id", "MLflow run of the best trial (parent run)", "sweep"),
    Name("tag", "best_params.<key>", "the best trial's value of each searched key (parent run)", "sweep"),
    # ---- metrics per epoch
    Name("metric", "train/loss", "training cross-entropy, per epoch"),
    Name("metric", "train/acc", "training accuracy, per epoch"),
    Name("metric", "val/loss", "validation cross-entropy, per epoch"),
    Name("metric", "val/acc", "validation accuracy, per epoch"),
    Name("metric", "<split>/auroc/<Finding>", "ROC AUC of one finding on val or test (`data.task=multilabel`, "
         "unknown labels left out), or of one class on test (multi-class)"),
    Name("metric", "<split>/ap/<Finding>", "multi-label: val or test average precision of one finding"),
    Name("metric", "<split>/sensitivity/<Finding>", "multi-label: val or test sensitivity of one finding at p >= 0.5"),
    Name("metric", "<split>/specificity/<Finding>", "multi-label: val or test specificity of one finding at p >= 0.5"),
    Name("metric", "<split>/auroc_macro", "multi-label: mean ROC AUC over the findings (the default "
         "`selection_metric`); multi-class: macro one-vs-rest test AUROC"),
    Name("metric", "<split>/ap_macro", "multi-label: mean average precision over the findings"),
    Name("metric", "val/<score>/<Class>", "validation precision, recall or F1 of one class, per epoch"),
    Name("metric", "val/<score>_<average>", "validation precision / recall / F1, macro or weighted, per epoch"),
    Name("metric", "val/recall_disease_mean", "mean validation recall over all classes but `data.healthy_class`"),
    Name("metric", "epoch", "the epoch counter Lightning logs beside each value", "lightning"),
    Name("metric", "lr-<Optimizer>", "learning rate per epoch (Lightning's LearningRateMonitor)", "callbacks"),
    # ---- metrics of the model
    Name("metric", "model/params_total", "number of parameters"),
    Name("metric", "model/params_trainable", "number of trainable parameters (after `backbone.freeze`)"),
    Name("metric", "model/size_mb", "parameters + buffers, MB"),
    Name("metric", "model/depth", "number of conv + linear layers"),
    # ---- test metrics (selected checkpoint)
    Name("metric", "test/acc", "test accuracy of the selected checkpoint"),
    Name("metric", "test/loss", "test cross-entropy"),
    Name("metric", "test/<score>/<Class>", "test precision, recall, F1 or ROC AUC of one class"),
    Name("metric", "test/<score>_<average>", "test precision / recall / F1 / ROC AUC, macro or weighted averages"),
    Name("metric", "test/recall_disease_mean", "mean test recall over all classes but `data.healthy_class`"),
    Name("metric", "val/op_threshold/<Class>", "operating point of a disease class, chosen on validation by "
         "`clinical.operating_point` (on calibrated probabilities with `clinical.calibration=temperature`)"),
    Name("metric", "test/op_<rate>/<Class>", "test sensitivity, specificity, PPV or NPV at that operating point"),
    Name("metric", "test/op_<rate>_<bound>/<Class>", "bootstrap interval (`clinical.confidence`) of that rate"),
    Name("metric", "test/auroc_<bound>/<Class>", "bootstrap interval of `test/auroc/<Class>`"),
    Name("metric", "test/<calibration>", "top-label ECE, MCE, equal-mass ECE, Brier score or NLL of the test "
         "probabilities (lower is better)"),
    Name("metric", "test/<calibration per class>/<Class>", "ECE, MCE, equal-mass ECE or Brier of one class one-vs-rest"),
    Name("metric", "val/temperature", "temperature fitted on validation (`clinical.calibration=temperature`); "
         ">1 softens over-confident probabilities"),
    Name("metric", "test/calibrated/<calibration>", "the same after temperature scaling"),
    Name("metric", "test/calibrated/<calibration per class>/<Class>", "the same per class after temperature scaling"),
    Name("metric", "test/aurc", "area under the risk-coverage curve (mean error rate over coverages; lower is better)"),
    Name("metric", "test/risk_cov<percent>", "error rate on the most confident 80 / 90 % of test images"),
    Name("metric", "test/calibrated/aurc", "the same after temperature scaling"),
    Name("metric", "test/calibrated/risk_cov<percent>", "the same after temperature scaling"),
    Name("metric", "test/tta/acc", "test accuracy of the TTA-averaged probabilities (`clinical.tta`)"),
    Name("metric", "test/tta/<calibration>", "calibration of the TTA-averaged probabilities"),
    Name("metric", "test/tta/aurc", "area under the risk-coverage curve of the TTA-averaged probabilities"),
    # ---- explanation metrics
    Name("metric", "xai/aopc_morf", "AOPC, most relevant regions first (higher: the map found what matters)", "aopc"),
    Name("metric", "xai/aopc_lerf", "AOPC, least relevant regions first (lower is better)", "aopc"),
    Name("metric", "xai/aopc_random", "AOPC in random order: the baseline MoRF must beat", "aopc"),
    Name("metric", "xai/aopc_morf/<Class>", "MoRF AOPC of the images of one true class", "aopc"),
    Name("metric", "xai/knn_acc_embedding", "cross-validated k-NN accuracy on the penultimate embeddings", "embeddings"),
    Name("metric", "xai/knn_acc_raw", "the same on raw pixels (the baseline)", "embeddings"),
    Name("metric", "xai/silhouette_embedding", "silhouette of the classes in embedding space", "embeddings"),
    Name("metric", "xai/silhouette_raw", "silhouette of the classes in pixel space", "embeddings"),
    Name("metric", "xai/loc/<kind>/<localisation score>", "localisation score of the true-class map against a mask kind "
         f"(`lung`, `lesion`, `tumor`, or a CSV's `data.mask_kind`); scores: "
         f"{', '.join(VALUES['localisation score'])}", "localisation"),
    Name("metric", "xai/sanity_rank_corr", "Spearman correlation with the fully randomised model's map (near 0 is good)",
         "sanity"),
    Name("metric", "xai/shortcut/<Class>/<measure>", "shortcut audit of one class: `outside_mass`, `border_mass`, "
         "`n_clusters`, `flag`", "shortcut"),
    Name("metric", "xai/shortcut/flagged_classes", "number of classes the shortcut audit flags", "shortcut"),
    Name("metric", "xai/loc/<kind>/<localisation score>/<Finding>", "multi-label: a localisation score of one "
         "finding's map against its own mask channel (`box`: also `box_iou`, `hit_iou_<T>`)", "localisation"),
    Name("metric", "xai/<method>/aopc/<aopc order>", "AOPC of one explainer of `explain.methods` (when more than "
         "Grad-CAM is chosen; Grad-CAM's also under `xai/aopc_<order>`)", "aopc"),
    Name("metric", "xai/<method>/aopc/morf/<Class>", "one explainer's MoRF AOPC of one true class or finding", "aopc"),
    Name("metric", "xai/<method>/loc/<kind>/<localisation score>", "one explainer's localisation score against a "
         "mask kind", "localisation"),
    Name("metric", "xai/<method>/loc/<kind>/<localisation score>/<Finding>", "multi-label: one explainer's "
         "localisation score of one finding", "localisation"),
    Name("metric", "xai/<method>/shortcut/<Class>/<measure>", "one explainer's shortcut audit of one class or "
         "finding", "shortcut"),
    Name("metric", "xai/<method>/shortcut/flagged_classes", "classes or findings one explainer's audit flags",
         "shortcut"),
    Name("metric", "time/maps_<method>_s", "seconds one explainer of `explain.methods` took for its maps of the "
         "explained sample (computed once, shared by every step)", "explain"),
    Name("metric", "time/<step>_s", "seconds one explanation step took (`time/tsne_s`: t-SNE inside embeddings)",
         "explain"),
    Name("metric", "time/attributions_<method>_s", "seconds one attribution method took", "attributions"),
    Name("metric", "xai/method/<method>/<metric>", "mean over the scored images of one explainer's metric "
         "(heatlens.explain.registry method, heatlens.explain.scoring metric; see reports/explainers.json)",
         "explainers"),
    Name("metric", "xai/method/<method>/mean_rank", "an explainer's mean rank over every metric (1 = best)",
         "explainers"),
    Name("metric", "time/explainers_<method>_s", "seconds one explainer's maps and metrics took", "explainers"),
    # ---- sweep parent metrics
    Name("metric", "best_value", "best `selection_metric` value of the study so far", "sweep"),
    Name("metric", "sweep/n_complete", "trials completed", "sweep"),
    Name("metric", "sweep/n_pruned", "trials pruned", "sweep"),
    Name("metric", "sweep/n_failed", "trials failed", "sweep"),
    Name("metric", "sweep/epochs_trained", "epochs trained over all trials", "sweep"),
    # ---- artifacts
    Name("artifact", "summary.png", "confusion matrix, mean perturbation curves, headline numbers, one Grad-CAM per class"),
    Name("artifact", "model/<path>", "the tested checkpoint as an MLflow pyfunc model (`HeatlensClassifier`)"),
    Name("artifact", "config/config.yaml", "the composed config"),
    Name("artifact", "config/overrides.yaml", "the command-line overrides"),
    Name("artifact", "config/resumed/<n>/<file>", "config and overrides of the n-th resumed job"),
    Name("artifact", "checkpoints/<file>.ckpt", "uploaded checkpoints (`logger.upload_checkpoints`)"),
    Name("artifact", "checkpoints/index.json", "every checkpoint: monitor → local path, score, uploaded file; the selected one"),
    Name("artifact", "reports/classification_report.txt", "scikit-learn classification report, text"),
    Name("artifact", "reports/classification_report.json", "the same as JSON"),
    Name("artifact", "reports/confusion_matrix.json", "class names and test confusion counts"),
    Name("artifact", "reports/roc_auc.json", "test ROC AUC per class"),
    Name("artifact", "reports/operating_points.json", "per disease class: threshold, test confusion, sensitivity, "
         "specificity, PPV, NPV and AUROC with intervals"),
    Name("artifact", "reports/clinical.json", "clinical settings, temperature, operating points, reliability bins"),
    Name("artifact", "reports/test_set.json", "test ids, their count and sha256"),
    Name("artifact", "reports/test_predictions.npz", "test ids, labels, probabilities"),
    Name("artifact", "reports/skipped_files.json", "files left out with `data.on_bad_image=skip`, with the reason"),
    Name("artifact", "reports/error.txt", "traceback of a FAILED run"),
    Name("artifact", "reports/explainers.json", "per explainer and metric: estimate, 95 % bootstrap interval "
         "over images, rank; mean ranks", "explainers"),
    Name("artifact", "explain/explainers.npz", "per-image value of every explainer's every metric", "explainers"),
    Name("artifact", "reports/sanity.json", "per-layer rank correlations of the cascading randomisation", "sanity"),
    Name("artifact", "figures/confusion_matrix.png", "test confusion matrix"),
    Name("artifact", "figures/roc.png", "test ROC curves"),
    Name("artifact", "figures/val_recall_history.png", "validation recall per class and epoch, selected epoch marked"),
    Name("artifact", "figures/val_auroc_history.png", "multi-label: validation AUROC per finding and epoch, selected "
         "epoch marked"),
    Name("artifact", "figures/operating_points/<Class>.png", "test confusion matrix of a disease class at its "
         "operating point; the title gives the rule and intervals"),
    Name("artifact", "figures/calibration/reliability.png", "reliability diagrams (top-1 and per class) before / after "
         "temperature scaling, with bin counts"),
    Name("artifact", "figures/risk_coverage.png", "risk-coverage curves: error rate among the most confident images"),
    Name("artifact", "figures/gradcam/<Class>.png", "correct and misclassified images of a class with Grad-CAM overlays",
         "gradcam"),
    Name("artifact", "figures/aopc/curves.png", "mean MoRF / LeRF / random perturbation curves", "aopc"),
    Name("artifact", "figures/heatmaps/<figure>.png", "average grid, box plots, four-colour composite, "
         "`eigen_<Class>.png`", "heatmap_stats"),
    Name("artifact", "figures/embeddings/tsne.png", "t-SNE of raw pixels beside embeddings", "embeddings"),
    Name("artifact", "figures/attributions/grid.png", "image, then one column per attribution method", "attributions"),
    Name("artifact", "figures/explainers/leaderboard.png", "explainers x metrics coloured by rank, best boxed, "
         "mean rank", "explainers"),
    Name("artifact", "figures/explainers/examples.png", "the same images under every explainer, one colour "
         "scale per explainer", "explainers"),
    Name("artifact", "figures/sanity/cascade.png", "maps as layers are randomised from the head down", "sanity"),
    Name("artifact", "figures/shortcut/<Class>.png", "one row per SpRAy cluster: mean map, size, verdict, typical images",
         "shortcut"),
    Name("artifact", "figures/sweep/<figure>.png", "Optuna optimisation history and parameter importance", "sweep"),
    Name("artifact", "sweep/results.yaml", "the sweep's summary: best trial, its params, trial counts", "sweep"),
    Name("artifact", "figures/methods/<method>/<path>", "the heatmap steps' figures of one explainer of "
         "`explain.methods` other than Grad-CAM (aopc/curves.png, heatmaps/, shortcut/)", "explain"),
    Name("artifact", "explain/methods/<method>/<step>.npz", "the arrays behind one explainer's numbers (aopc, "
         "localisation, shortcut, heatmap_stats)", "explain"),
    Name("artifact", "explain/<step>.npz", "the arrays behind a step's numbers (gradcam, aopc, heatmap_stats, "
         "embeddings, localisation, attributions, shortcut)", "explain"),
    Name("artifact", "report/<path>", "a comparison report's folder: report.md, report.html, figures/, tables/",
         "compare"),
)


def entries(kind: str) -> tuple[Name, ...]:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: choose one of {list(KINDS)}")
    return tuple(entry for entry in NAMES if entry.kind == kind)


def find(kind: str, logged: str) -> Name | None:
    """The catalogue entry a logged name belongs to, None when it has none (the first match wins)."""
    return next((entry for entry in entries(kind) if entry.matches(logged)), None)


def uncatalogued(kind: str, logged: list[str] | set[str]) -> list[str]:
    """The logged names of `kind` that no entry covers, sorted."""
    return sorted(name for name in logged if find(kind, name) is None)
