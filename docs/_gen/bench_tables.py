"""The benchmark tables of docs/benchmarks.md, read from bench/results.json (ratios, scale phases, the
command behind each key). The words of each row (what was timed against what) live here; every number
comes from the JSON."""

from __future__ import annotations

import json
from pathlib import Path

# key -> (goal, heatlens side, reference side, setting), as measured in the committed run.
RATIO_ROWS = {
    "cache_vs_png": ("≥ 3", "decoded memory-mapped cache 1,137 img/s", "decoding the PNGs every epoch 227 img/s",
                     "256 phantom images at 224 px + lung and lesion masks, batch 32, `num_workers=2`, same eval transform"),
    "gradcam_vs_forward": ("≥ 0.8", "all-class Grad-CAM 20.5 img/s", "plain eval forward 16.2 img/s",
                           "timm resnet18, 224 px, batch 8, 4 classes, 1 thread"),
    "gradcam_vs_pytorch_grad_cam": ("≥ 8", "391 ms / batch, all 4 classes",
                                    "pytorch-grad-cam `GradCAM` once per class 5,562 ms", "same"),
    "aopc_vs_forward": ("≥ 0.8", "perturbation curves 19.3 img/s", "best plain forward 19.7 img/s (tried batch 4/8/16 × "
                        "NCHW/channels_last; best batch 8, channels_last)", "2 images × 17 steps, 56 px regions"),
    "tsne_vs_sklearn": ("≥ 2.5", "openTSNE (exact kNN, FFT gradients) 19.9 s", "scikit-learn `TSNE` (Barnes-Hut) 62.5 s",
                        "10 000 × 1 024, perplexity 30, 250 + 100 iterations each"),
    "auroc_interval_vs_sklearn": ("—", "`auroc_interval`, all resamples from count tables 13.9 ms",
                                  "scikit-learn `roc_auc_score` once per resample 1,507 ms (the same interval)",
                                  "500 test images, 30 % positive, tied scores, 1000 resamples"),
}
PHASES = ("generate", "cache", "job_setup", "train_epoch", "validation", "test", "explain", "predict_and_log")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def _n(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def ratios(results: dict) -> str:
    rows = ["| key | ratio | goal | heatlens | reference | setting | command |", "|---|---|---|---|---|---|---|"]
    for key, (goal, ours, reference, setting) in RATIO_ROWS.items():
        rows.append(f"| `{key}` | {results[key]:.2f} | {goal} | {ours} | {reference} | {setting} | "
                    f"`{results['commands'][key]}` |")
    return "\n".join(rows)


def sweep_pruning(results: dict) -> str:
    s = results["sweep_pruning"]
    return "\n".join([
        "| key | ratio | goal | heatlens | reference | setting | command |", "|---|---|---|---|---|---|---|",
        f"| `sweep_pruning` | {s['ratio']:.2f} | ≥ 2, best within noise | `hydra.sweeper.pruner=halving`: "
        f"{s['epochs_pruned']} epochs ({s['trials_pruned']} of 12 trials pruned), best val/recall_macro "
        f"{s['best_pruned']:.3f}, {s['seconds_pruned']:.0f} s | no pruning: {s['epochs_unpruned']} epochs, best "
        f"{s['best_unpruned']:.3f}, {s['seconds_unpruned']:.0f} s; gap {abs(s['best_unpruned'] - s['best_pruned']):.3f} "
        f"vs standard error {s['noise_se']:.3f} (n_val = {s['n_val']}) | 12 TPE trials × 9 epochs, simple_cnn width 8, "
        f"phantom 600 images at 48 px, CPU | `{results['commands']['sweep_pruning']}` |",
    ])


def scale(results: dict) -> str:
    s = results["scale"]
    small, large = (s["sizes"][str(n)] for n in s["images"])
    growth = s["growth"]
    a, b = (f"{n:,}" for n in s["images"])
    rows = [f"| phase | {a} images | {b} images | time × | peak MiB, {a} | peak MiB, {b} | memory × |",
            "|---|---|---|---|---|---|---|"]
    for phase in PHASES:
        p, q = small["phases"][phase], large["phases"][phase]
        speed = f" ({p['img_s']:.0f} → {q['img_s']:.0f} img/s)" if "img_s" in p else ""
        rows.append(f"| {phase}{speed} | {p['s']:.1f} s | {q['s']:.1f} s | {growth[phase]['s']:.2f} | "
                    f"{_n(p['pss_mib'], 0)} | {_n(q['pss_mib'], 0)} | {growth[phase]['pss_mib']:.2f} |")
    for step, seconds in small["phases"]["explain"]["steps_s"].items():
        other = large["phases"]["explain"]["steps_s"][step]
        rows.append(f"| &nbsp;&nbsp;explain: {step} | {seconds:.1f} s | {other:.1f} s | {other / seconds:.2f} | | | |")
    rows.append(f"| **peak of the whole run** | | | | **{_n(small['peak']['pss_mib'], 0)}** | "
                f"**{_n(large['peak']['pss_mib'], 0)}** | **{growth['peak']['pss_mib']:.2f}** |")
    rows.append(f"\nCommand: `{results['commands']['scale']}`; setting: {s['setting']}.")
    return "\n".join(rows)


TABLES = {"ratios": ratios, "sweep_pruning": sweep_pruning, "scale": scale}
