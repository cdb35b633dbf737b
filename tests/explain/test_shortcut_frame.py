"""Shortcut audit without an anatomy mask at coarse maps: the frame rule against hand-computed masses, and
a model trained on a phantom whose COVID images carry a wide black frame (data.shortcut.kind=frame)."""

import hashlib
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from heatlens.data.errors import DataError
from heatlens.data import phantom as phantom_module
from heatlens.data.phantom import PhantomSpec
from heatlens.data.phantom_render import COVID, render_batch
from heatlens.explain import cam, shortcut
from heatlens.explain.shortcut import AuditSettings
from trained_cnn import trained_simple_cnn


def rings(side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A map on the outer two rings (all of the 1/4 frame band at 8x8) and one on the middle 4x4."""
    outer = np.ones((side, side))
    outer[2:-2, 2:-2] = 0
    return outer, 1.0 - outer


def test_frame_reference_is_the_median_over_the_other_classes_of_their_median_frame_mass() -> None:
    outer, centre = rings()
    uniform = np.ones((8, 8))  # frame mass 48/64 = 0.75
    maps = np.stack([outer, outer, centre, centre, uniform, uniform, uniform, centre])
    labels = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    # class medians of the frame mass: 1, 0, 0.75, (0.75 + 0) / 2
    expected = [np.median([0, 0.75, 0.375]), np.median([1, 0.75, 0.375]), np.median([1, 0, 0.375]),
                np.median([1, 0, 0.75])]
    np.testing.assert_allclose(shortcut.frame_reference(maps, labels, 4), expected)
    assert np.isnan(shortcut.frame_reference(maps, np.zeros(8), 1)).all()  # one class: nothing to go by


def test_a_frame_cluster_is_suspect_against_central_classes_without_masks_at_7x7() -> None:
    rng = np.random.default_rng(0)
    frame = np.ones((7, 7))
    frame[2:5, 2:5] = 0  # the outer two rings of a 7x7 map
    central = np.zeros((7, 7))
    central[2:5, 2:5] = 1
    framed = frame + 0.2 * rng.random((12, 7, 7))
    anatomy = central + 0.2 * rng.random((30, 7, 7))
    maps = np.concatenate([framed, anatomy[:10], anatomy[10:]])
    labels = np.array([0] * 22 + [1] * 20)
    audit = shortcut.audit_classes(maps, labels, 2)
    weights = shortcut.band_weights((7, 7), 0.25)
    assert weights.mean() == pytest.approx(0.75)  # uniform share of the 1/4 band, exact at 7 cells
    reference = np.median(shortcut.region_mass(anatomy[10:], weights))
    assert audit.classes[0].frame_reference == pytest.approx(reference)
    by_class = audit.classes[0]
    frame_cluster = next(c for c in by_class.clusters if 0 in c.members)
    assert sorted(frame_cluster.members) == list(range(12)) and frame_cluster.reasons == ("frame",)
    assert frame_cluster.frame_mass == pytest.approx(shortcut.region_mass(framed, weights).mean())
    assert by_class.flag == 1 and audit.suspect.tolist() == [True] * 12 + [False] * 30
    assert audit.classes[1].flag == 0
    # the border band of 1/8 against a uniform map does not see it: the frame rule is what flags it
    assert shortcut.excess_over_uniform(frame_cluster.border_mass, by_class.border_share) < 0.5
    assert shortcut.audit_class(framed).flag == 0  # one class alone: no reference, no frame rule


def test_frame_settings_are_checked() -> None:
    with pytest.raises(shortcut.ExplainError, match="frame_band=0.5"):
        AuditSettings(frame_band=0.5)
    with pytest.raises(shortcut.ExplainError, match="frame_excess=0"):
        AuditSettings(frame_excess=0)


def test_the_phantom_frame_shrinks_image_and_masks_inside_a_black_border() -> None:
    classes = np.array([COVID, COVID, 2])
    framed = render_batch(np.random.default_rng(0), classes, 64, np.array([True, False, False]), "frame")
    plain = render_batch(np.random.default_rng(0), classes, 64, np.array([False, False, False]))
    np.testing.assert_array_equal(framed.images[1:], plain.images[1:])  # unframed images unchanged
    rows = np.flatnonzero(framed.images[0].max(axis=1) > 0)
    margin = rows[0]
    assert 0.12 * 64 <= margin <= 0.2 * 64 + 1 and (framed.images[0, :margin] == 0).all()
    assert framed.lungs[0].sum() < plain.lungs[0].sum() and not framed.lungs[0, :margin].any()


def test_the_frame_is_a_phantom_option_that_keeps_the_corner_phantoms_cache_key() -> None:
    with pytest.raises(DataError, match=r"data\.shortcut\.kind='ring'"):
        PhantomSpec(shortcut_kind="ring")
    corner, frame = PhantomSpec(shortcut_fraction=0.5), PhantomSpec(shortcut_fraction=0.5, shortcut_kind="frame")
    assert frame.key() != corner.key()
    # the key of a corner phantom is the hash it had before `kind` existed: cached folders stay valid
    fields = {k: v for k, v in asdict(corner).items() if k != "shortcut_kind"}
    payload = json.dumps({**fields, "version": phantom_module.GENERATOR_VERSION}, sort_keys=True)
    assert corner.key() == hashlib.sha256(payload.encode()).hexdigest()[:16]


def phantom(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Phantom radiographs at 56 px (7 x 7 simple_cnn maps, as 224 px backbones); COVID framed."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(4, size=n, p=[0.3, 0.25, 0.3, 0.15])
    framed = (classes == COVID) & (rng.random(n) < fraction)
    batch = render_batch(rng, classes, 56, framed, "frame")
    return torch.from_numpy((batch.images[:, None] - 0.5) / 0.25).float(), torch.from_numpy(classes), framed


@pytest.mark.parametrize("fraction", [0.8, 0.0])
def test_a_model_trained_on_the_frame_is_flagged_without_masks_at_7x7(fraction: float) -> None:
    """Grad-CAM 7x7 of a simple_cnn trained 5 epochs, no anatomy mask: the framed class is flagged with
    most of its framed images suspect; a model trained on a clean phantom flags nothing."""
    train_x, train_y, _ = phantom(320, fraction, seed=1)
    test_x, test_y, framed = phantom(200, fraction, seed=2)
    net = trained_simple_cnn(train_x, train_y)
    maps = cam.gradcam_all_classes(net.eval(), test_x)
    heat = cam.relu(cam.heatmaps_for(maps, maps.logits.argmax(1)))
    assert heat.shape[1:] == (7, 7)
    audit = shortcut.audit_classes(heat, test_y, 4)
    if fraction:
        assert [a.flag for a in audit.classes] == [1, 0, 0, 0]
        hits = (audit.suspect & framed).sum()
        assert hits / audit.suspect.sum() >= 0.8 and hits / framed.sum() >= 0.8
    else:
        assert audit.flagged_classes == 0 and not audit.suspect.any()
