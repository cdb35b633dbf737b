"""Eigen-heatmaps of maps without variance (all equal, e.g. a class whose maps are all zero): no component,
the average reconstructs every map, in both the in-memory and the streamed PCA."""

from __future__ import annotations

import numpy as np

from heatlens.explain.eigen import EigenAccumulator, eigen_heatmaps


def test_equal_maps_have_no_component_and_reconstruct_exactly() -> None:
    maps = np.tile(np.arange(16, dtype=np.float64).reshape(1, 4, 4), (3, 1, 1))
    streamed = EigenAccumulator((4, 4))
    streamed.update(maps)
    for result in (streamed.result(0.95), eigen_heatmaps(maps, 0.95)):
        assert result.components.shape == (0, 4, 4)
        np.testing.assert_allclose(result.mean, maps[0])
        np.testing.assert_allclose(result.reconstruct(maps[1]), maps[1])
