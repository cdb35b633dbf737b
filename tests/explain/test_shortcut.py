"""Shortcut audit: relevance masses against hand-computed toy maps, SpRAy clustering against known groups."""

import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import SpectralClustering
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import kneighbors_graph

from heatlens.data.phantom_render import COVID, render_batch
from heatlens.explain import ExplainError, cam, shortcut
from heatlens.explain.shortcut import NO_RELEVANCE, AuditSettings
from trained_cnn import trained_simple_cnn


def blobs(centres: list[tuple[int, int]], sizes: list[int], side: int = 8, noise: float = 0.1,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Maps with a unit bump at one centre per group plus uniform noise, and their group of origin."""
    rng = np.random.default_rng(seed)
    maps, groups = [], []
    for group, ((row, col), size) in enumerate(zip(centres, sizes)):
        for _ in range(size):
            m = noise * rng.random((side, side))
            m[row, col] += 1.0
            maps.append(m)
            groups.append(group)
    return np.stack(maps), np.array(groups)


def lung_masks(n: int, side: int = 8) -> np.ndarray:
    """A 'lung' block in the middle of the image: rows 2-5, columns 1-6 (24 of 64 cells)."""
    masks = np.zeros((n, side, side), dtype=np.uint8)
    masks[:, 2:6, 1:7] = 1
    return masks


# -- masses ---------------------------------------------------------------------------------------

def test_uniform_map_masses_equal_the_region_shares() -> None:
    audit = shortcut.audit_class(np.ones((3, 8, 8)), lung_masks(3))
    assert audit.outside_mass == pytest.approx(40 / 64) and audit.outside_share == pytest.approx(40 / 64)
    # band 1/8 of 8 cells: the outer ring, 64 - 36 cells
    assert audit.border_mass == pytest.approx(28 / 64) and audit.border_share == pytest.approx(28 / 64)
    np.testing.assert_allclose(audit.corner_mass, [1 / 64] * 4)
    assert audit.corner_share == pytest.approx(1 / 64)


@pytest.mark.parametrize("band", [0.1, 0.2, 0.3])
def test_fractional_band_shares_follow_the_continuous_geometry(band: float) -> None:
    """A band narrower than a cell counts the cell's covered part: uniform shares are exact at any width."""
    for side in (1, 2, 3, 5, 7, 8):  # on 1 to 3 cells a cell may hold both edges' strips
        assert shortcut.band_weights((side, side), band).mean() == pytest.approx(1 - (1 - 2 * band) ** 2)
        np.testing.assert_allclose(shortcut.corner_weights((side, side), band).mean(axis=(1, 2)), [band ** 2] * 4)
    audit = shortcut.audit_class(np.full((2, 7, 7), 3.0), settings=AuditSettings(band=band))
    assert audit.border_mass == pytest.approx(1 - (1 - 2 * band) ** 2)


def test_hand_computed_masses_of_a_toy_map() -> None:
    heat = np.zeros((4, 4))
    heat[0, 0] = 2.0  # top-left corner
    heat[0, 3] = 1.0  # top-right corner
    heat[1, 1] = 3.0  # inside the ring, on the lung
    heat[2, 2] = 4.0  # inside the ring, off the lung
    lung = np.zeros((4, 4))
    lung[1, 1] = lung[1, 2] = 1
    audit = shortcut.audit_class(heat[None], lung[None], AuditSettings(band=0.25))
    assert audit.border_mass == pytest.approx(3 / 10)
    np.testing.assert_allclose(audit.corner_mass, [2 / 10, 1 / 10, 0, 0])
    assert audit.outside_mass == pytest.approx(7 / 10) and audit.outside_share == pytest.approx(14 / 16)
    assert audit.border_share == pytest.approx(12 / 16) and audit.corner_share == pytest.approx(1 / 16)


def test_masks_at_image_resolution_are_area_averaged_to_the_map() -> None:
    fine = np.zeros((1, 1, 16, 16))
    fine[..., :6, :4] = 1  # cell (0, 0) fully inside, cell (1, 0) half inside at 4x4
    coarse = shortcut.anatomy_at(torch.from_numpy(fine), (4, 4))
    assert coarse.shape == (1, 4, 4)
    assert coarse[0, 0, 0] == 1.0 and coarse[0, 1, 0] == 0.5 and coarse[0, :, 1:].sum() == 0
    heat = np.ones((1, 4, 4))
    assert shortcut.audit_class(heat, fine).outside_mass == pytest.approx(1 - 1.5 / 16)


def test_excess_over_uniform_is_zero_for_uniform_and_one_when_all_relevance_is_in_the_region() -> None:
    assert shortcut.excess_over_uniform(0.3, 0.3) == 0
    assert shortcut.excess_over_uniform(1.0, 0.3) == 1
    assert shortcut.excess_over_uniform(0.65, 0.3) == pytest.approx(0.5)
    assert np.isnan(shortcut.excess_over_uniform(1.0, 1.0))


# -- SpRAy clustering -----------------------------------------------------------------------------

@pytest.mark.parametrize("centres, sizes", [
    ([(0, 0), (4, 4)], [15, 12]),
    ([(0, 0), (4, 3), (6, 6)], [12, 9, 7]),
    ([(0, 0), (0, 7), (7, 0), (4, 4)], [20, 14, 11, 8]),
])
def test_eigengap_finds_the_number_of_groups_and_clusters_match_them_exactly(centres, sizes) -> None:
    maps, groups = blobs(centres, sizes)
    audit = shortcut.audit_class(maps)
    assert audit.n_clusters == len(sizes)
    assert adjusted_rand_score(groups, audit.cluster) == 1.0
    assert [c.size for c in audit.clusters] == sorted(sizes, reverse=True)  # largest first


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")  # scikit-learn's reference, on purpose
def test_separated_groups_are_the_graph_components_and_the_zero_eigenvalues_count_them() -> None:
    """Axiom: the normalised Laplacian has one zero eigenvalue per connected component."""
    maps, groups = blobs([(0, 0), (4, 4), (7, 7)], [12, 10, 9])
    features = shortcut.cluster_features(maps, side=16)
    labels, eigenvalues = shortcut.spectral_clusters(features)
    graph = kneighbors_graph(features, n_neighbors=int(np.ceil(np.log2(len(maps)))))
    components, _ = connected_components(graph + graph.T, directed=False)
    assert components == 3 and np.sum(eigenvalues < 1e-9) == 3 and eigenvalues[3] > 0.1
    # scikit-learn's spectral clustering on the same affinity agrees
    reference = SpectralClustering(n_clusters=3, affinity="precomputed", random_state=0)
    assert adjusted_rand_score(reference.fit_predict(0.5 * (graph + graph.T)), labels) == 1.0


def test_one_homogeneous_group_is_one_cluster() -> None:
    rng = np.random.default_rng(3)
    base = np.zeros((8, 8))
    base[2:6, 1:3] = base[2:6, 5:7] = 1
    for n in (5, 12, 40, 150):
        assert shortcut.audit_class(base + 0.5 * rng.random((n, 8, 8))).n_clusters == 1


def test_clustering_is_deterministic_and_independent_of_the_input_order() -> None:
    maps, groups = blobs([(0, 0), (4, 3), (6, 6)], [12, 9, 7])
    first, again = shortcut.audit_class(maps), shortcut.audit_class(maps)
    np.testing.assert_array_equal(first.cluster, again.cluster)
    order = np.random.default_rng(1).permutation(len(maps))
    shuffled = shortcut.audit_class(maps[order])
    np.testing.assert_array_equal(shuffled.cluster, first.cluster[order])


def test_large_maps_are_pooled_before_clustering() -> None:
    maps, groups = blobs([(0, 0), (20, 20)], [10, 10], side=32, noise=0.05)
    features = shortcut.cluster_features(maps, side=8)
    assert features.shape == (20, 64)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0)
    assert adjusted_rand_score(groups, shortcut.audit_class(maps, settings=AuditSettings(cluster_side=8)).cluster) == 1


# -- suspect clusters and the class verdict -------------------------------------------------------

def test_marker_cluster_is_suspect_and_flags_the_class_lesion_cluster_is_not() -> None:
    lesions, _ = blobs([(3, 2)], [20], seed=1)  # on the lung
    markers, _ = blobs([(0, 0)], [10], seed=2)  # a top-left corner marker
    maps = np.concatenate([lesions, markers])
    audit = shortcut.audit_class(maps, lung_masks(len(maps)))
    assert audit.n_clusters == 2 and audit.flag == 1
    lesion_cluster, marker_cluster = audit.clusters
    assert lesion_cluster.size == 20 and not lesion_cluster.suspect
    assert marker_cluster.size == 10 and "corner:top_left" in marker_cluster.reasons
    # the corner holds the bump (1) plus its share of the noise (mean 0.05 per cell) of each map
    expected = np.mean([(m[0, 0]) / m.sum() for m in markers])
    assert marker_cluster.corner_mass[0] == pytest.approx(expected)
    np.testing.assert_array_equal(audit.suspect, np.arange(30) >= 20)


def test_relevance_mostly_outside_the_anatomy_or_in_the_band_is_suspect() -> None:
    off_lung = np.zeros((6, 8, 8))
    off_lung[:, 6:8, 2:6] = 1  # below the lungs; half of it in the band (row 7), border excess 0.11
    audit = shortcut.audit_class(off_lung, lung_masks(6))
    assert audit.outside_mass == 1 and audit.border_mass == 0.5
    assert audit.clusters[0].reasons == ("outside",) and audit.flag == 1
    ring = np.ones((6, 8, 8))
    ring[:, 1:7, 1:7] = 0  # all relevance in the band of 1/8
    audit = shortcut.audit_class(ring)
    assert audit.border_mass == 1 and audit.clusters[0].reasons == ("border",)
    # each ring cell holds 1/28 of the relevance, 64/28 = 2.3 times a uniform map's density
    denser = shortcut.audit_class(ring, settings=AuditSettings(corner_lift=2.25))
    assert denser.clusters[0].reasons == ("border", *(f"corner:{name}" for name in shortcut.CORNERS))
    assert np.isnan(audit.outside_mass)  # no anatomy masks: no outside mass, no outside reason


def test_a_suspect_cluster_too_small_does_not_flag_the_class() -> None:
    lesions, _ = blobs([(3, 2)], [40], seed=1)
    markers, _ = blobs([(0, 0)], [8], seed=2)
    maps = np.concatenate([lesions, markers])
    audit = shortcut.audit_class(maps)
    assert audit.n_clusters == 2 and audit.clusters[1].suspect and audit.suspect[-8:].all()
    assert audit.flag == 1
    by_share = shortcut.audit_class(maps, settings=AuditSettings(min_flag_share=0.2))  # needs 9.6 maps
    assert by_share.clusters[1].suspect and by_share.flag == 0
    assert shortcut.audit_class(maps, settings=AuditSettings(min_flag_images=9)).flag == 0


# -- degenerate inputs ----------------------------------------------------------------------------

def test_small_classes_have_defined_results() -> None:
    empty = shortcut.audit_class(np.zeros((0, 8, 8)))
    assert empty.n_images == 0 and empty.n_clusters == 0 and empty.flag == 0 and np.isnan(empty.border_mass)
    maps, _ = blobs([(0, 0), (5, 5)], [1, 1])
    for n in (1, 2):
        audit = shortcut.audit_class(maps[:n])
        assert audit.n_clusters == 1 and audit.cluster.tolist() == [0] * n and len(audit.eigenvalues) == 0
    three, _ = blobs([(0, 0), (5, 5)], [2, 1])
    audit = shortcut.audit_class(three)  # 2 neighbours of 3 maps: a complete graph, eigenvalues 0, 1.5, 1.5
    np.testing.assert_allclose(audit.eigenvalues, [0, 1.5, 1.5], atol=1e-12)
    assert audit.n_clusters == 1 and audit.cluster.tolist() == [0, 0, 0]


def test_zero_maps_get_no_cluster_and_constant_maps_one() -> None:
    zero = shortcut.audit_class(np.zeros((4, 8, 8)), lung_masks(4))
    assert zero.n_clusters == 0 and zero.flag == 0 and (zero.cluster == NO_RELEVANCE).all()
    assert np.isnan(zero.outside_mass) and np.isnan(zero.corner_mass).all() and not zero.suspect.any()
    maps, groups = blobs([(0, 0), (4, 4)], [8, 8])
    mixed = np.concatenate([maps, np.zeros((2, 8, 8))])
    audit = shortcut.audit_class(mixed)
    assert audit.n_clusters == 2 and audit.cluster[-2:].tolist() == [NO_RELEVANCE] * 2
    assert adjusted_rand_score(groups, audit.cluster[:-2]) == 1
    constant = shortcut.audit_class(np.full((9, 8, 8), 0.3))
    assert constant.n_clusters == 1 and constant.clusters[0].size == 9 and constant.flag == 0


# -- every class at once --------------------------------------------------------------------------

def test_audit_classes_splits_by_true_class_and_keeps_the_input_order() -> None:
    lesions, _ = blobs([(3, 2)], [12], seed=1)
    markers, _ = blobs([(0, 0)], [8], seed=2)
    maps = np.concatenate([lesions, markers, lesions[:6]])
    labels = np.array([0] * 20 + [2] * 6)
    order = np.random.default_rng(0).permutation(len(maps))
    audit = shortcut.audit_classes(torch.from_numpy(maps[order]), labels[order], num_classes=3,
                                   masks=lung_masks(len(maps)))
    assert [a.n_images for a in audit.classes] == [20, 0, 6]
    assert [a.flag for a in audit.classes] == [1, 0, 0] and audit.flagged_classes == 1
    is_marker = np.zeros(len(maps), dtype=bool)
    is_marker[12:20] = True
    np.testing.assert_array_equal(audit.suspect, is_marker[order])
    np.testing.assert_array_equal(audit.cluster[labels[order] == 0], audit.classes[0].cluster)


def test_bad_input_is_named() -> None:
    maps = np.ones((3, 8, 8))
    with pytest.raises(ExplainError, match="non-negative"):
        shortcut.audit_class(-maps)
    with pytest.raises(ExplainError, match=r"\(N, h, w\)"):
        shortcut.audit_class(maps[0])
    with pytest.raises(ExplainError, match="NaN"):
        shortcut.audit_class(np.full((3, 8, 8), np.nan))
    with pytest.raises(ExplainError, match="masks has 2 entries for 3"):
        shortcut.audit_class(maps, lung_masks(2))
    with pytest.raises(ExplainError, match=r"\[0, 1\]"):
        shortcut.audit_class(maps, lung_masks(3) * 255)
    with pytest.raises(ExplainError, match=r"labels must lie in \[0, 2\)"):
        shortcut.audit_classes(maps, [0, 1, 2], num_classes=2)
    with pytest.raises(ExplainError, match="labels has 2 entries"):
        shortcut.audit_classes(maps, [0, 1], num_classes=2)
    with pytest.raises(ExplainError, match="band=0.6"):
        AuditSettings(band=0.6)
    with pytest.raises(ExplainError, match="corner_lift=1"):
        AuditSettings(corner_lift=1)


# -- a trained model ------------------------------------------------------------------------------

def phantom(n: int, marker_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Phantom radiographs rendered in memory at 48 px (6 x 6 simple_cnn maps); markers on COVID only."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(4, size=n, p=[0.3, 0.25, 0.3, 0.15])
    marker = (classes == COVID) & (rng.random(n) < marker_fraction)
    batch = render_batch(rng, classes, 48, marker)
    images = torch.from_numpy((batch.images[:, None] - 0.5) / 0.25).float()
    return images, torch.from_numpy(classes), batch.lungs.astype(np.uint8), marker


@pytest.mark.parametrize("marker_fraction", [0.8, 0.0])
def test_a_model_trained_on_the_marker_is_flagged_and_its_suspects_carry_the_marker(marker_fraction) -> None:
    """The done-means of the audit at unit scale: real Grad-CAM of a simple_cnn trained 5 epochs."""
    train_x, train_y, _, _ = phantom(320, marker_fraction, seed=1)
    test_x, test_y, lungs, marker = phantom(200, marker_fraction, seed=2)
    net = trained_simple_cnn(train_x, train_y)
    maps = cam.gradcam_all_classes(net, test_x)
    heat = cam.relu(cam.heatmaps_for(maps, maps.logits.argmax(1)))
    audit = shortcut.audit_classes(heat, test_y, 4, lungs)
    if marker_fraction:
        assert [a.flag for a in audit.classes] == [1, 0, 0, 0]
        hits = (audit.suspect & marker).sum()
        assert hits / audit.suspect.sum() >= 0.8 and hits / marker.sum() >= 0.6
    else:
        assert audit.flagged_classes == 0 and not audit.suspect.any()
