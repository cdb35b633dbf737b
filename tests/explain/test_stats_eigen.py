import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from heatlens.explain import ExplainError, eigen, stats


def random_maps(n, c=3, shape=(5, 6), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, c, *shape)).astype(np.float32), rng.integers(0, c, size=n)


def test_streamed_mean_grid_and_box_summaries_equal_numpy_on_all_data():
    maps, labels = random_maps(300)
    acc = stats.HeatmapStats(num_classes=3, shape=(5, 6))
    for start in range(0, 300, 37):  # uneven batches, numpy and torch inputs
        batch = slice(start, start + 37)
        acc.update(torch.from_numpy(maps[batch]) if start % 2 else maps[batch], labels[batch])
    grid = acc.mean_grid()
    for t in range(3):
        np.testing.assert_allclose(grid[t], maps[labels == t].mean(axis=0), rtol=1e-5, atol=1e-6)
        for c in range(3):
            values = maps[labels == t, c].ravel()
            want = [values.min(), *np.percentile(values, [25, 50, 75]), values.max()]
            np.testing.assert_allclose(acc.box_summaries()[t, c], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acc.mean_explained()[1], grid[1, 1])
    assert acc.counts.tolist() == np.bincount(labels, minlength=3).tolist()


def test_reservoir_bounds_memory_and_estimates_quartiles():
    """20 000 heatmaps through a 5 000-value reservoir: exact extremes, quartiles within sampling error."""
    acc = stats.HeatmapStats(num_classes=2, shape=(7, 7), reservoir_size=5_000)
    rng = np.random.default_rng(1)
    for _ in range(20):
        acc.update(rng.uniform(size=(1000, 2, 7, 7)), np.zeros(1000, dtype=int))
    summary = acc.box_summaries()
    assert acc._reservoir.nbytes == 2 * 2 * 5_000 * 4
    assert summary[0, 0, 0] == pytest.approx(0, abs=1e-4) and summary[0, 0, 4] == pytest.approx(1, abs=1e-4)
    np.testing.assert_allclose(summary[0, 0, 1:4], [0.25, 0.5, 0.75], atol=0.03)
    assert np.isnan(summary[1]).all() and np.isnan(acc.mean_grid()[1]).all()


def test_four_colour_composite_picks_the_normalised_maximum():
    means = np.zeros((4, 2, 2))
    means[0, 0, 0], means[1, 0, 1], means[2, 1, 0], means[3, 1, 1] = 1, 1, 1, 1
    means[3] = means[3] * 100 + 5  # scale and offset do not matter after normalisation
    assert stats.four_colour_composite(means).tolist() == [[0, 1], [2, 3]]


def test_stats_bad_input():
    acc = stats.HeatmapStats(num_classes=3, shape=(5, 6))
    with pytest.raises(ExplainError, match=r"update needs maps \(B, 3, 5, 6\)"):
        acc.update(np.zeros((2, 3, 4, 4)), np.zeros(2))
    with pytest.raises(ExplainError, match="labels must lie in"):
        acc.update(np.zeros((1, 3, 5, 6)), np.array([3]))


def low_rank_maps(n=400, shape=(6, 6), seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(3, shape[0] * shape[1]))
    coef = rng.normal(size=(n, 3)) * np.array([5.0, 2.0, 1.0])
    return (coef @ basis + 0.05 * rng.normal(size=(n, basis.shape[1])) + 3).reshape(n, *shape)


def test_eigen_heatmaps_match_sklearn_and_streaming():
    maps = low_rank_maps()
    result = eigen.eigen_heatmaps(maps, variance=0.95)
    reference = PCA(n_components=0.95, svd_solver="full").fit(maps.reshape(len(maps), -1))
    assert len(result.components) == reference.n_components_
    np.testing.assert_allclose(result.explained_variance_ratio, reference.explained_variance_ratio_, rtol=1e-8)
    for ours, theirs in zip(result.components.reshape(len(result.components), -1), reference.components_):
        assert abs(float(ours @ theirs)) == pytest.approx(1, abs=1e-8)
    streamed = eigen.EigenAccumulator((6, 6))
    for chunk in np.array_split(maps, 7):
        streamed.update(torch.from_numpy(chunk))
    out = streamed.result(0.95)
    np.testing.assert_allclose(out.mean, result.mean, atol=1e-10)
    np.testing.assert_allclose(out.components, result.components, atol=1e-6)
    np.testing.assert_allclose(out.explained_variance, result.explained_variance, rtol=1e-6)
    assert eigen.eigen_heatmaps(maps, variance=1.0).components.shape[0] == 36


def test_reconstruction_converges_to_the_map():
    maps = low_rank_maps()
    result = eigen.eigen_heatmaps(maps, variance=1.0)
    target = maps[0]
    errors = [np.abs(result.reconstruct(target, k) - target).max() for k in (0, 1, 3, 36)]
    np.testing.assert_allclose(result.reconstruct(target, 0), result.mean)
    assert errors[0] > errors[1] > errors[2] > errors[3] and errors[3] < 1e-8
    with pytest.raises(ExplainError, match="k must be between 0 and 36"):
        result.reconstruct(target, 40)


def test_per_class_accumulator():
    maps = low_rank_maps(60)
    labels = np.repeat([0, 1, 2], 20)
    labels[-1] = 0  # class 2 keeps 19
    acc = eigen.ClassEigenAccumulator(3, (6, 6))
    acc.update(maps, labels)
    results = acc.results(0.9)
    assert [r.num_samples for r in results] == [21, 20, 19]
    np.testing.assert_allclose(results[1].mean, maps[labels == 1].mean(0))
    joint = eigen.means_and_first_components_correlation(results)
    assert joint.shape == (6, 6)
    assert joint[1, 4] == pytest.approx(np.corrcoef(results[1].mean.ravel(), results[1].components[0].ravel())[0, 1])


def test_correlations():
    a = np.random.default_rng(0).normal(size=(3, 4, 4))
    corr = eigen.correlation_matrix(a)
    assert corr.shape == (3, 3) and np.allclose(np.diag(corr), 1)
    assert corr[0, 1] == pytest.approx(np.corrcoef(a[0].ravel(), a[1].ravel())[0, 1])
    b = np.stack([2 * a[1] + 1, -a[0], a[2]])
    cross = eigen.correlate_sets(a, b)
    assert cross[1, 0] == pytest.approx(1) and cross[0, 1] == pytest.approx(-1) and cross[2, 2] == pytest.approx(1)
    coarse = np.repeat(np.repeat(a, 2, axis=1), 2, axis=2)  # 8x8 version: resized to a common grid
    assert eigen.correlate_sets(a, coarse).shape == (3, 3)
    with pytest.raises(ExplainError, match="too many|more than"):
        eigen.EigenAccumulator((256, 256))
