"""Shortcut audit: does a class's Grad-CAM sit outside the anatomy, in the border, or in a marker cluster?

Per true class, on the ReLU'd Grad-CAM maps of the predicted class at feature resolution (N, h, w):

- relevance masses, each beside its uniform-map expectation (the share of the image the region covers):
  outside the anatomy mask, in a border band `band * side` wide, and in each corner square of that side;
- SpRAy (Lapuschkin et al., "Unmasking Clever Hans predictors and assessing what machines really
  learn", Nature Communications 2019), as CoRelAy runs it: heatmaps downsampled and normalised, a
  symmetric binary k-nearest-neighbour affinity, the symmetric normalised graph Laplacian, the number of
  clusters from its eigengap, k-means on the row-normalised eigenvectors (Ng, Jordan & Weiss 2001);
- a cluster is suspect when its relevance lies mostly outside the anatomy or in the border band,
  measured as the excess over uniform (mass - share) / (1 - share): 0 for a uniform map, 1 when all
  relevance is in the region; or when it crowds into a corner of the band: a corner's relevance
  density (mass / share) several times a uniform map's. A corner needs its own, relative test: Grad-CAM
  at feature resolution smears a corner marker over about one cell around it, so the corner square itself
  never holds "most" of the relevance (phantom: 5-12 % in a 1/64 corner, 3-7.6x uniform; see AuditSettings);
- or when it sits in a wide frame (`frame_band`, 1/4 of the side) far more than the model's maps of the
  other classes do: the excess of its frame mass over theirs, (mass - reference) / (1 - reference). This
  needs no anatomy mask and holds at 7x7: a frame-driven map at coarse resolution spreads over the outer
  two rings of cells and looks almost uniform against the geometry (band mass 0.43-0.45 against a uniform
  0.44 on the phantom; see AuditSettings), but not against anatomy-driven maps, whose centre is hot;
- a class is flagged when a large enough cluster is suspect.

Masses treat a map as constant over each cell: a cell half inside the band counts half, so a uniform map's
masses equal the region shares exactly at any resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.linalg import eigh
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import KMeans
from sklearn.neighbors import kneighbors_graph

from heatlens.explain._common import to_numpy
from heatlens.explain.errors import ExplainError
from heatlens.explain.stats import finite_mean

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
NO_RELEVANCE = -1  # the cluster of an all-zero map: nothing to cluster, no mass to measure


@dataclass(frozen=True)
class AuditSettings:
    """Thresholds of the audit; the defaults are justified beside each one and calibrated on the phantom."""

    # Border band width as a fraction of the side. 1/8 holds the phantom's marker (3-9 % of the side in
    # from the edge) and is the outer ring of cells of simple_cnn's 8x8 map at 64 px; of widths 1/8 to 3/8
    # it separates marker clusters' corner density (>= 5.6x uniform) from the others' (<= 0.9x) the most.
    band: float = 0.125
    # Suspect when the excess over uniform reaches one half: the region then holds most of the relevance
    # (mass >= 0.5 + share / 2 > 0.5) and at least half of what a uniform map would put elsewhere moved in.
    excess: float = 0.5
    # Suspect when a corner square's relevance density reaches this multiple of uniform. Calibrated with
    # simple_cnn on the phantom with a corner marker: marker clusters 3.0-7.6x, every other cluster (lesion-
    # driven, or a model trained without marker) <= 1.0x on 8x8 maps, <= 1.8x on coarser 6x6 ones.
    corner_lift: float = 2.5
    # Frame band width (fraction of the side): wide enough for frames of 10-25 % of the side and for the
    # outer two cell rings of a 7x7 or 8x8 map, where a frame-driven Grad-CAM spreads.
    frame_band: float = 0.25
    # Suspect when a cluster's frame mass exceeds the other classes' reference by this share of what the
    # reference leaves outside the frame: its centre holds at most half the relevance theirs does. Calibrated
    # with simple_cnn on the phantom with a frame (shortcut.kind=frame), 80 % of COVID framed: frame clusters
    # 0.59-0.66 (Grad-CAM 7x7), 0.71-0.85 (8x8), 0.64-0.69 (Integrated Gradients 64x64); every other cluster
    # <= 0.37 at 7x7, one 6-map cluster 0.53 at 8x8. Plain gradients' noisy maps reach 0.27-0.43 only
    # (others <= 0.06): audit them with a lower frame_excess (docs/guides/explanations.md).
    frame_excess: float = 0.5
    # kNN graph degree; None: ceil(log2 N) (von Luxburg 2007: k of order log N keeps the graph connected),
    # which reaches SpRAy's k = 10 at N = 1000; in a class of 10 maps, a group of 5 can be its own component.
    n_neighbors: int | None = None
    max_clusters: int = 8  # eigengap searched over 1..max_clusters (SpRAy inspects the first few)
    # Maps larger than this are average-pooled to it before clustering (SpRAy downsizes maps first:
    # shifts of a pixel should not separate two images looking at the same structure).
    cluster_side: int = 16
    # A suspect cluster flags its class only if it holds this share of the class's maps and at least
    # `min_flag_images`: one odd heatmap is noise, a shortcut shows on a group.
    min_flag_share: float = 0.05
    min_flag_images: int = 2
    seed: int = 0  # k-means initialisation

    def __post_init__(self) -> None:
        checks = {
            "band": 0 < self.band < 0.5,
            "excess": 0 < self.excess <= 1,
            "corner_lift": self.corner_lift > 1,
            "frame_band": 0 < self.frame_band < 0.5,
            "frame_excess": 0 < self.frame_excess <= 1,
            "n_neighbors": self.n_neighbors is None or self.n_neighbors >= 1,
            "max_clusters": self.max_clusters >= 1,
            "cluster_side": self.cluster_side >= 1,
            "min_flag_share": 0 <= self.min_flag_share <= 1,
            "min_flag_images": self.min_flag_images >= 1,
        }
        wrong = [name for name, ok in checks.items() if not ok]
        if wrong:
            name = wrong[0]
            raise ExplainError(f"shortcut setting {name}={getattr(self, name)!r} is out of range "
                               "(band and frame_band in (0, 0.5), excess and frame_excess in (0, 1], "
                               "corner_lift > 1, counts >= 1, min_flag_share in [0, 1])")


@dataclass(frozen=True)
class Cluster:
    members: np.ndarray  # indices into the class's maps
    mean_heatmap: np.ndarray  # (h, w) mean of the members' maps, each scaled to unit mass
    outside_mass: float  # mean over members; NaN without anatomy masks
    outside_share: float  # mean share of the image the members' masks leave out (uniform expectation)
    border_mass: float
    corner_mass: np.ndarray  # (4,) in CORNERS order
    frame_mass: float  # mean mass in the frame band (AuditSettings.frame_band)
    reasons: tuple[str, ...]  # why it is suspect: "outside", "border", "corner:<name>", "frame"; empty if not

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def suspect(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class ClassAudit:
    """One class. Masses are means over the class's non-zero maps; NaN when there is none."""

    n_images: int
    outside_mass: float  # NaN without anatomy masks
    outside_share: float
    border_mass: float
    border_share: float
    corner_mass: np.ndarray  # (4,) in CORNERS order
    corner_share: float  # each corner's share of the image
    frame_mass: float
    frame_reference: float  # frame mass expected of anatomy-driven maps (other classes); NaN: no frame rule
    clusters: tuple[Cluster, ...]  # largest first
    cluster: np.ndarray  # (N,) int: the image's cluster, NO_RELEVANCE for an all-zero map
    suspect: np.ndarray  # (N,) bool: the image is in a suspect cluster
    eigenvalues: np.ndarray  # smallest normalised-Laplacian eigenvalues (empty when not clustered)
    flag: int  # 1 when a suspect cluster is large enough (AuditSettings.min_flag_*)

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)


@dataclass(frozen=True)
class ShortcutAudit:
    """Every class of a test set, with per-image results in the order of the input maps."""

    classes: tuple[ClassAudit, ...]
    cluster: np.ndarray  # (N,) int: cluster within the image's true class, NO_RELEVANCE for a zero map
    suspect: np.ndarray  # (N,) bool
    settings: AuditSettings = field(default_factory=AuditSettings)

    @property
    def flagged_classes(self) -> int:
        return sum(audit.flag for audit in self.classes)


def band_weights(shape: tuple[int, int], band: float) -> np.ndarray:
    """(h, w): the fraction of each cell inside the border band `band * side` wide."""
    rows, cols = (_edge_cover(n, band) for n in shape)
    return 1.0 - np.outer(1.0 - rows, 1.0 - cols)


def corner_weights(shape: tuple[int, int], band: float) -> np.ndarray:
    """(4, h, w): the fraction of each cell inside each corner square (CORNERS order) of side `band * side`."""
    h, w = shape
    top, left = _low_cover(h, band), _low_cover(w, band)
    bottom, right = top[::-1], left[::-1]
    return np.stack([np.outer(top, left), np.outer(top, right), np.outer(bottom, left), np.outer(bottom, right)])


def _low_cover(n: int, band: float) -> np.ndarray:
    """Overlap of each unit cell [i, i + 1) with [0, band * n)."""
    edges = np.arange(n + 1, dtype=np.float64)
    return np.clip(band * n - edges[:-1], 0.0, 1.0)


def _edge_cover(n: int, band: float) -> np.ndarray:
    """Overlap with both edge strips: they are disjoint (band < 1/2), so a single cell may hold both."""
    low = _low_cover(n, band)
    return low + low[::-1]


def anatomy_at(masks: torch.Tensor | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Masks (N, H, W) or (N, 1, H, W), binary or fractional, -> (N, h, w) share of each cell inside.

    Area averaging keeps the masses exact when H, W are multiples of h, w (the usual feature stride).
    """
    m = to_numpy(masks).astype(np.float64)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3:
        raise ExplainError(f"anatomy masks must be (N, H, W) or (N, 1, H, W), got shape {m.shape}")
    if m.size and (m.min() < 0 or m.max() > 1 or not np.isfinite(m).all()):
        raise ExplainError(f"anatomy masks must lie in [0, 1], got values in [{m.min()}, {m.max()}]")
    if m.shape[1:] == tuple(shape):
        return m
    return F.adaptive_avg_pool2d(torch.from_numpy(m)[:, None], tuple(shape))[:, 0].numpy()


def region_mass(heatmaps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N,) share of each map's relevance in a region (weights (h, w) or (N, h, w)); NaN for a zero map."""
    total = heatmaps.sum(axis=(1, 2))
    inside = (heatmaps * weights).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan)


def excess_over_uniform(mass: float, share: float) -> float:
    """(mass - share) / (1 - share): 0 for a uniform map, 1 with all relevance in the region; NaN if share is 1."""
    return (mass - share) / (1.0 - share) if share < 1 else float("nan")


def _check_heatmaps(heatmaps: torch.Tensor | np.ndarray) -> np.ndarray:
    x = to_numpy(heatmaps).astype(np.float64)
    if x.ndim != 3:
        raise ExplainError(f"heatmaps must be (N, h, w), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ExplainError("heatmaps contain NaN or infinite values")
    if x.size and x.min() < 0:
        raise ExplainError(f"heatmaps must be non-negative (apply heatlens.explain.cam.relu first), min {x.min():g}")
    return x


def cluster_features(heatmaps: np.ndarray, side: int) -> np.ndarray:
    """(N, D): maps average-pooled to at most `side` x `side`, each scaled to unit L2 norm.

    Unit norm makes Euclidean kNN rank by cosine similarity: where a map puts relevance, not how much
    (Grad-CAM's scale follows the logit and differs between images).
    """
    h, w = heatmaps.shape[1:]
    x = torch.from_numpy(heatmaps)
    if h > side or w > side:
        x = F.adaptive_avg_pool2d(x[:, None], (min(h, side), min(w, side)))[:, 0]
    flat = x.reshape(len(x), -1).numpy()
    return flat / np.linalg.norm(flat, axis=1, keepdims=True)


def spectral_clusters(features: np.ndarray, settings: AuditSettings = AuditSettings()) -> tuple[np.ndarray, np.ndarray]:
    """SpRAy clustering of (N, D) rows: (labels (N,), the smallest eigenvalues of the normalised Laplacian).

    The number of clusters n maximises the eigengap lambda_{n+1} - lambda_n over n <= max_clusters. One
    dense eigendecomposition serves both the eigengap and the embedding (N is a class of a test set).
    Fewer than 3 maps, or fewer than 2 distinct ones, form one cluster without a graph.
    """
    n = len(features)
    distinct = len(np.unique(features.round(12), axis=0))
    if n < 3 or distinct < 2:
        return np.zeros(n, dtype=np.int64), np.empty(0)
    k = settings.n_neighbors or max(2, math.ceil(math.log2(n)))
    graph = kneighbors_graph(features, n_neighbors=min(k, n - 1), mode="connectivity", include_self=False)
    affinity = 0.5 * (graph + graph.T)  # CoRelAy's symmetric SparseKNN
    values, vectors = eigh(laplacian(affinity, normed=True).toarray())
    values = np.clip(values, 0.0, None)
    top = min(settings.max_clusters, n - 1, distinct)
    gaps = values[1:top + 1] - values[:top]
    count = int(np.argmax(gaps)) + 1
    if count == 1:
        return np.zeros(n, dtype=np.int64), values[:top + 1]
    embedding = vectors[:, :count]
    embedding = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    labels = KMeans(n_clusters=count, n_init=10, random_state=settings.seed).fit_predict(embedding)
    return labels.astype(np.int64), values[:top + 1]


def _ordered(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters largest first, ties by first member, so results do not depend on k-means' naming."""
    names = np.unique(labels)
    order = sorted(names, key=lambda c: (-(labels == c).sum(), np.flatnonzero(labels == c)[0]))
    rename = {old: new for new, old in enumerate(order)}
    return np.array([rename[c] for c in labels], dtype=np.int64)


def audit_class(heatmaps: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray | None = None,
                settings: AuditSettings = AuditSettings(), reference: float = float("nan")) -> ClassAudit:
    """Audit one class: heatmaps (N, h, w) >= 0, anatomy masks (N, H, W) in [0, 1] or None.

    `reference`: the frame-band mass of maps driven by the anatomy (audit_classes passes the class's
    `frame_reference`, from the other classes' maps); NaN skips the frame rule.
    """
    maps = _check_heatmaps(heatmaps)
    n, shape = len(maps), maps.shape[1:]
    if masks is not None:
        if len(masks) != n:
            raise ExplainError(f"anatomy masks has {len(masks)} entries for {n} heatmaps")
        outside_weights = 1.0 - anatomy_at(masks, shape)
    else:
        outside_weights = np.full((n, *shape), np.nan)
    border, corners = band_weights(shape, settings.band), corner_weights(shape, settings.band)
    in_frame = region_mass(maps, band_weights(shape, settings.frame_band))

    live = np.flatnonzero(maps.sum(axis=(1, 2)) > 0)
    outside = region_mass(maps, outside_weights)
    outside_share = outside_weights.mean(axis=(1, 2)) if n else np.empty(0)
    in_border = region_mass(maps, border)
    in_corners = np.stack([region_mass(maps, c) for c in corners], axis=1) if n else np.empty((0, 4))

    cluster = np.full(n, NO_RELEVANCE, dtype=np.int64)
    suspect = np.zeros(n, dtype=bool)
    clusters: list[Cluster] = []
    eigenvalues = np.empty(0)
    if len(live):
        labels, eigenvalues = spectral_clusters(cluster_features(maps[live], settings.cluster_side), settings)
        cluster[live] = _ordered(labels)
        totals = maps.sum(axis=(1, 2), keepdims=True)
        unit = maps / np.where(totals > 0, totals, 1.0)
        for c in range(int(cluster.max()) + 1):
            members = np.flatnonzero(cluster == c)
            masses = (finite_mean(outside[members]), finite_mean(outside_share[members]),
                      float(in_border[members].mean()),
                      in_corners[members].mean(axis=0), float(in_frame[members].mean()))
            reasons = _reasons(*masses, float(border.mean()), float(corners[0].mean()), reference, settings)
            clusters.append(Cluster(members, unit[members].mean(axis=0), *masses, reasons=reasons))
            suspect[members] = bool(reasons)
    min_size = max(settings.min_flag_images, settings.min_flag_share * len(live))
    return ClassAudit(
        n_images=n,
        outside_mass=finite_mean(outside[live]),
        outside_share=finite_mean(outside_share[live]),
        border_mass=finite_mean(in_border[live]),
        border_share=float(border.mean()),
        corner_mass=in_corners[live].mean(axis=0) if len(live) else np.full(4, np.nan),
        corner_share=float(corners[0].mean()),
        frame_mass=finite_mean(in_frame[live]),
        frame_reference=float(reference),
        clusters=tuple(clusters),
        cluster=cluster,
        suspect=suspect,
        eigenvalues=eigenvalues,
        flag=int(any(c.suspect and c.size >= min_size for c in clusters)),
    )


def _reasons(outside_mass: float, outside_share: float, border_mass: float, corner_mass: np.ndarray,
             frame_mass: float, border_share: float, corner_share: float, frame_reference: float,
             settings: AuditSettings) -> tuple[str, ...]:
    """Why a cluster's mean masses make it suspect (empty: not suspect). NaN compares false: no reason."""
    reasons = []
    if excess_over_uniform(outside_mass, outside_share) >= settings.excess:
        reasons.append("outside")
    if excess_over_uniform(border_mass, border_share) >= settings.excess:
        reasons.append("border")
    reasons += [f"corner:{name}" for name, mass in zip(CORNERS, corner_mass)
                if mass >= settings.corner_lift * corner_share]
    if excess_over_uniform(frame_mass, frame_reference) >= settings.frame_excess:
        reasons.append("frame")
    return tuple(reasons)


def frame_reference(heatmaps: np.ndarray, labels: np.ndarray, num_classes: int,
                    settings: AuditSettings = AuditSettings()) -> np.ndarray:
    """(num_classes,) frame-band mass expected of each class's maps were they driven by the anatomy: the
    median over the other classes of their median per-map frame mass; NaN with no other class to go by.

    Medians of medians, so that one shortcut class among three or more does not raise the others' reference.
    """
    maps = _check_heatmaps(heatmaps)
    y = to_numpy(labels).astype(np.int64).reshape(-1)
    masses = region_mass(maps, band_weights(maps.shape[1:], settings.frame_band))
    medians = np.array([_median(masses[y == c]) for c in range(num_classes)])
    return np.array([_median(np.delete(medians, c)) for c in range(num_classes)])


def _median(values: np.ndarray) -> float:
    """Median ignoring NaN (all-zero maps, classes without images), NaN for no value."""
    finite = values[~np.isnan(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


def audit_classes(heatmaps: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, num_classes: int,
                  masks: torch.Tensor | np.ndarray | None = None,
                  settings: AuditSettings = AuditSettings()) -> ShortcutAudit:
    """Audit every class: ReLU'd predicted-class maps (N, h, w), true labels (N,), anatomy masks or None.

    A class without images gets an empty audit (n_images 0, NaN masses, flag 0). Each class's frame rule
    goes by the other classes' maps (`frame_reference`).
    """
    maps = _check_heatmaps(heatmaps)
    y = to_numpy(labels).astype(np.int64).reshape(-1)
    if len(y) != len(maps):
        raise ExplainError(f"labels has {len(y)} entries for {len(maps)} heatmaps")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ExplainError(f"labels must lie in [0, {num_classes}), got {np.unique(y).tolist()}")
    mask_array = to_numpy(masks) if masks is not None else None
    if mask_array is not None and len(mask_array) != len(maps):
        raise ExplainError(f"anatomy masks has {len(mask_array)} entries for {len(maps)} heatmaps")
    cluster = np.full(len(maps), NO_RELEVANCE, dtype=np.int64)
    suspect = np.zeros(len(maps), dtype=bool)
    references = frame_reference(maps, y, num_classes, settings)
    audits = []
    for c in range(num_classes):
        rows = np.flatnonzero(y == c)
        audit = audit_class(maps[rows], None if mask_array is None else mask_array[rows], settings, references[c])
        cluster[rows], suspect[rows] = audit.cluster, audit.suspect
        audits.append(audit)
    return ShortcutAudit(tuple(audits), cluster, suspect, settings)
