"""The explainer registry: every method by name, (B, h, w) maps, one-line errors, seeded."""

import pytest
import torch

from heatlens.explain import cam, registry
from heatlens.explain.errors import ExplainError


@pytest.mark.parametrize("name", registry.NAMES)
def test_every_method_gives_one_map_per_image(name, tiny_net, gray_images):
    images = gray_images[:2]
    maps = registry.explain(name, tiny_net, images, [0, 2])
    assert maps.ndim == 3 and maps.shape[0] == 2 and maps.dtype == torch.float32
    assert maps.shape[-2:] in ((8, 8), (32, 32))  # feature resolution (one-pass Grad-CAM) or the image's
    assert torch.isfinite(maps).all() and maps.abs().sum() > 0


def test_one_pass_gradcam_is_pytorch_grad_cam_up_to_resizing(tiny_net, gray_images):
    ours = registry.explain("gradcam", tiny_net, gray_images, [1, 0, 2, 1])
    reference = cam.library_cam("gradcam", tiny_net, gray_images, [1, 0, 2, 1])
    resized = cam.normalize_per_image(cam.upsample(ours, reference.shape[-2:]))
    torch.testing.assert_close(resized, reference, atol=1e-4, rtol=1e-4)


def test_library_names_map_to_their_pytorch_grad_cam_method(tiny_net, gray_images):
    torch.testing.assert_close(registry.explain("gradcam_pp", tiny_net, gray_images, 1),
                               cam.library_cam("gradcam++", tiny_net, gray_images, 1))


def test_stochastic_method_repeats_with_its_seed(tiny_net, gray_images):
    a = registry.explain("smoothgrad", tiny_net, gray_images, 0, seed=3)
    b = registry.explain("smoothgrad", tiny_net, gray_images, 0, seed=3)
    c = registry.explain("smoothgrad", tiny_net, gray_images, 0, seed=4)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_unknown_method_is_one_line_listing_the_valid_ones():
    with pytest.raises(ExplainError) as error:
        registry.check_methods(["gradcam", "gradcamm"])
    message = str(error.value)
    assert "\n" not in message and "'gradcamm'" in message
    assert all(name in message for name in registry.NAMES)
    with pytest.raises(ExplainError, match="twice"):
        registry.check_methods(["xrai", "xrai"])
    assert registry.check_methods("xrai") == ["xrai"]


def test_explainer_is_a_sanity_compatible_function(tiny_net, gray_images):
    fn = registry.explainer("saliency")
    torch.testing.assert_close(fn(tiny_net, gray_images, torch.tensor([0, 1, 2, 0])),
                               registry.explain("saliency", tiny_net, gray_images, [0, 1, 2, 0]))
