import numpy as np
import pytest
import torch

from heatlens.explain import ExplainError, embeddings


def blobs(n=120, dims=20, seed=0, gap=6.0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    centres = rng.normal(size=(3, dims)) * gap
    return (centres[y] + rng.normal(size=(len(y), dims))).astype(np.float32), y


def test_penultimate_embeddings_from_tensor_and_batches(tiny_net, gray_images):
    expected = tiny_net.embed(gray_images).detach().numpy()
    np.testing.assert_allclose(embeddings.penultimate_embeddings(tiny_net, gray_images, batch_size=3), expected,
                               rtol=1e-5, atol=1e-6)
    loader = [{"image": gray_images[:2]}, {"image": gray_images[2:]}]
    np.testing.assert_allclose(embeddings.penultimate_embeddings(tiny_net, loader), expected, rtol=1e-5, atol=1e-6)


def test_raw_pixels_area_resize():
    images = torch.arange(16.0).view(1, 1, 4, 4)
    assert embeddings.raw_pixels(images, size=2).tolist() == [[2.5, 4.5, 10.5, 12.5]]
    assert embeddings.raw_pixels(images, size=None).shape == (1, 16)


def test_tsne_seeded_and_keeps_clusters_apart():
    x, y = blobs()
    a = embeddings.tsne_2d(x, seed=1, n_iter=250, n_jobs=1)
    b = embeddings.tsne_2d(x, seed=1, n_iter=250, n_jobs=1)
    assert a.shape == (120, 2) and np.array_equal(a, b)
    assert embeddings.knn_accuracy(a, y) == 1.0


def test_knn_accuracy_separable_vs_random_labels():
    x, y = blobs()
    assert embeddings.knn_accuracy(x, y) == 1.0
    shuffled = np.random.default_rng(0).permutation(y)
    assert 0.1 < embeddings.knn_accuracy(x, shuffled) < 0.6  # chance is 1/3


def test_silhouette_hand_computed():
    x = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([0, 0, 1, 1])
    # s(i) = (b - a) / max(a, b): a = 1 for every point, b = 10.5, 9.5, 9.5, 10.5
    want = np.mean([9.5 / 10.5, 8.5 / 9.5, 8.5 / 9.5, 9.5 / 10.5])
    assert embeddings.silhouette(x, y) == pytest.approx(want)
    scores = embeddings.separation_scores(*blobs())
    assert scores["knn_acc"] == 1.0 and scores["silhouette"] > 0.5


def test_bad_input():
    with pytest.raises(ExplainError, match=r"x must be \(N, D\)"):
        embeddings.knn_accuracy(np.zeros(5), np.zeros(5))
    with pytest.raises(ExplainError, match="at least 2 samples per class"):
        embeddings.knn_accuracy(np.zeros((5, 2)), np.array([0, 0, 0, 0, 1]))
    with pytest.raises(ExplainError, match="NaN"):
        embeddings.silhouette(np.full((5, 2), np.nan), np.array([0, 0, 1, 1, 1]))
    with pytest.raises(ExplainError, match="lacks embed"):
        embeddings.penultimate_embeddings(torch.nn.Linear(2, 2), torch.zeros(1, 1, 2, 2))


def test_exact_neighbours_equal_scikit_learn_brute_force():
    from sklearn.neighbors import NearestNeighbors

    x, _ = blobs(n=150, dims=30, gap=1.0)
    indices, distances = embeddings.exact_neighbours(x, 10, block=64)  # 3 blocks, last one smaller
    ref_d, ref_i = NearestNeighbors(n_neighbors=11, algorithm="brute").fit(x).kneighbors(x)
    np.testing.assert_array_equal(indices, ref_i[:, 1:])  # reference includes each point itself first
    np.testing.assert_allclose(distances, ref_d[:, 1:], rtol=1e-4, atol=1e-4)


def test_knn_accuracy_on_a_test_set_smaller_than_k_per_fold_scores_instead_of_failing():
    # 2 samples per class -> 2 folds of 3 training samples: k=5 neighbours cannot exist, k is capped.
    y = np.array([0, 0, 1, 1, 2, 2])
    x = np.eye(3)[y] * 10.0 + np.random.default_rng(0).normal(scale=0.01, size=(6, 3))
    accuracy = embeddings.knn_accuracy(x, y, k=5)
    assert 0.0 <= accuracy <= 1.0
