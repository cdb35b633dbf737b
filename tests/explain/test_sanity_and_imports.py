import subprocess
import sys

import numpy as np
import pytest
import torch

from heatlens.explain import ExplainError, cam, sanity


def gradcam_fn(model, images, targets):
    return cam.heatmaps_for(cam.gradcam_all_classes(model, images), targets)


def trained_tiny_net():
    """Class = which corner holds a bright square; 60 Adam steps suffice to learn it."""
    from explain_models import TinyConvNet

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = TinyConvNet(in_chans=1, num_classes=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)

    def batch(n):
        x = 0.3 * torch.randn(n, 1, 32, 32, generator=g)
        y = torch.randint(0, 2, (n,), generator=g)
        for i, label in enumerate(y.tolist()):
            r = 2 if label == 0 else 20
            x[i, 0, r:r + 10, r:r + 10] += 2.0
        return x, y

    for _ in range(60):
        x, y = batch(32)
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    x, y = batch(16)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9
    return model, x, y


def test_cascading_randomisation_separates_trained_from_random_heatmaps():
    model, x, y = trained_tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = sanity.cascading_randomisation(model, x, y, gradcam_fn, seed=0)
    assert list(scores) == ["classifier", "body.5", "body.4", "body.1", "body.0"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # original untouched
    assert scores["body.0"] < 0.5  # fully random model: heatmaps no longer ranked like the trained ones
    steps = []
    again = sanity.cascading_randomisation(model, x, y, gradcam_fn, seed=0, layers=["body.5", "body.0"],
                                           advance=steps.append)
    assert again == pytest.approx({k: scores[k] for k in ("body.5", "body.0")}, nan_ok=True)
    assert steps == [1, 1]  # one progress step per scored layer

    def edge_detector(model, images, targets):  # ignores the weights: fails the sanity check
        return images[:, 0].abs()

    blind = sanity.cascading_randomisation(model, x, y, edge_detector)
    assert all(v == pytest.approx(1.0) for v in blind.values())


def test_rank_correlation_reference_and_bad_layer():
    a = np.random.default_rng(0).normal(size=(2, 3, 3))
    b = np.stack([a[0] ** 3, -a[1]])  # monotone increasing / decreasing transforms
    assert sanity.rank_correlation(a, b).tolist() == pytest.approx([1.0, -1.0])
    assert np.isnan(sanity.rank_correlation(np.ones((1, 2, 2)), a[:1, :2, :2])[0])
    from explain_models import TinyConvNet

    with pytest.raises(ExplainError, match="not parameter layers"):
        sanity.cascading_randomisation(TinyConvNet(), torch.zeros(1, 1, 8, 8), torch.zeros(1), gradcam_fn,
                                       layers=["nope"])


def test_explain_imports_no_lightning_mlflow_or_hydra():
    code = (
        "import sys\n"
        "import heatlens.explain\n"
        "from heatlens.explain import cam, perturbation, stats, eigen, embeddings, attributions, localisation, sanity\n"
        "from heatlens.explain import sampling, images\n"
        "cam._library_methods(); import captum.attr, saliency.core, openTSNE\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'lightning_fabric', 'mlflow', 'hydra', 'omegaconf'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
