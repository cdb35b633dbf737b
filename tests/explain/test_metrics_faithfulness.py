"""ROAD against pytorch-grad-cam; insertion / deletion and faithfulness correlation against Quantus."""

import numpy as np
import pytest
import quantus
import torch
from pytorch_grad_cam.metrics.perturbation_confidence import (
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torchvision.transforms.functional import gaussian_blur

from heatlens.explain.errors import ExplainError
from heatlens.explain.metrics import deletion_auc, faithfulness_correlation, insertion_auc, road_lerf, road_morf
from heatlens.explain.metrics.faithfulness import curve_auc, deletion_curves, insertion_curves

TARGETS = torch.tensor([0, 2, 1, 1])


@pytest.fixture
def net(tiny_net):
    return tiny_net.eval()


@pytest.fixture
def maps() -> torch.Tensor:
    return torch.rand(4, 32, 32, generator=torch.Generator().manual_seed(5))


def _grad_cam_road(net, images, maps, percentages, most_relevant_first):
    removal = RemoveMostRelevantFirst if most_relevant_first else RemoveLeastRelevantFirst
    targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in TARGETS]
    scores = [PerturbationConfidenceMetric(removal(100 - p, NoisyLinearImputer(noise=0.0)))(
        images, maps.numpy(), targets, net) for p in percentages]
    return np.mean(scores, axis=0)


@pytest.mark.parametrize("most_relevant_first", [True, False])
def test_road_equals_pytorch_grad_cam(net, gray_images, maps, most_relevant_first):
    metric = road_morf if most_relevant_first else road_lerf
    percentages = (10, 50, 90)
    mine = metric(net, gray_images, TARGETS, maps, percentages=percentages, noise=0.0)
    ref = _grad_cam_road(net, gray_images, maps, percentages, most_relevant_first)
    np.testing.assert_allclose(mine.numpy(), ref, atol=1e-5)


def test_road_resizes_coarse_maps_and_is_seeded(net, gray_images):
    cam = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(1))
    full = torch.nn.functional.interpolate(cam[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(road_morf(net, gray_images, TARGETS, cam, noise=0.0),
                               road_morf(net, gray_images, TARGETS, full, noise=0.0))
    first = road_morf(net, gray_images, TARGETS, cam, seed=3)
    torch.testing.assert_close(first, road_morf(net, gray_images, TARGETS, cam, seed=3))
    assert not torch.equal(first, road_morf(net, gray_images, TARGETS, cam, seed=4))


def _pixel_flipping(net, x, maps, steps, perturb_func=None):
    kwargs = {"perturb_func": perturb_func} if perturb_func else {"perturb_baseline": 0.0}
    metric = quantus.PixelFlipping(features_in_step=x[0].size // steps, disable_warnings=True, **kwargs)
    return np.array(metric(model=net, x_batch=x, y_batch=TARGETS.numpy(), a_batch=maps[:, None].numpy(),
                           device="cpu", softmax=True, channel_first=True))


def test_deletion_equals_quantus_pixel_flipping(net, gray_images, maps):
    curves = deletion_curves(net, gray_images, TARGETS, maps, steps=16)
    ref = _pixel_flipping(net, gray_images.numpy(), maps, 16)
    np.testing.assert_allclose(curves[:, 1:].numpy(), ref, atol=1e-5)
    torch.testing.assert_close(deletion_auc(net, gray_images, TARGETS, maps, steps=16), curve_auc(curves))


def test_insertion_equals_quantus_pixel_flipping_from_the_blur(net, gray_images, maps):
    blurred = gaussian_blur(gray_images, [11, 11], [5.0, 5.0]).numpy()
    original = gray_images.numpy().reshape(4, -1)

    def insert_original(arr, indices, **kwargs):
        out = arr.copy()
        rows = np.arange(len(arr))[:, None]
        out[rows, indices] = original[rows, indices]
        return out

    curves = insertion_curves(net, gray_images, TARGETS, maps, steps=16)
    ref = _pixel_flipping(net, blurred, maps, 16, perturb_func=insert_original)
    np.testing.assert_allclose(curves[:, 1:].numpy(), ref, atol=1e-5)
    # step 0 is the blurred image, the last step the image itself
    np.testing.assert_allclose(curves[:, -1].numpy(), net(gray_images).softmax(1).gather(1, TARGETS[:, None])[:, 0]
                               .detach().numpy(), atol=1e-6)
    torch.testing.assert_close(insertion_auc(net, gray_images, TARGETS, maps, steps=16), curve_auc(curves))


def test_faithfulness_correlation_equals_quantus(net, gray_images, maps):
    runs, size = 12, 40
    np.random.seed(7)
    ref = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size, perturb_baseline=0.0,
                                          return_aggregate=False, disable_warnings=True)(
        model=net, x_batch=gray_images.numpy(), y_batch=TARGETS.numpy(), a_batch=maps[:, None].numpy(),
        device="cpu", channel_first=True)
    np.random.seed(7)
    drawn = [[np.random.choice(32 * 32, size, replace=False) for _ in range(4)] for _ in range(runs)]
    subsets = torch.as_tensor(np.array(drawn)).permute(1, 0, 2)
    mine = faithfulness_correlation(net, gray_images, TARGETS, maps, nr_runs=runs, subset_size=size,
                                    subsets=subsets)
    np.testing.assert_allclose(mine.numpy(), np.array(ref), atol=1e-5)


def test_faithfulness_correlation_is_seeded(net, gray_images, maps):
    first = faithfulness_correlation(net, gray_images, TARGETS, maps, nr_runs=8, subset_size=30, seed=1)
    torch.testing.assert_close(first, faithfulness_correlation(net, gray_images, TARGETS, maps, nr_runs=8,
                                                               subset_size=30, seed=1))
    assert first.shape == (4,) and bool(((first >= -1) & (first <= 1)).all())


def test_bad_arguments_name_the_value(net, gray_images, maps):
    with pytest.raises(ExplainError, match="percentages"):
        road_morf(net, gray_images, TARGETS, maps, percentages=(0, 50))
    with pytest.raises(ExplainError, match="maps must be"):
        deletion_auc(net, gray_images, TARGETS, maps[:2])
    with pytest.raises(ExplainError, match="steps"):
        insertion_auc(net, gray_images, TARGETS, maps, steps=0)
