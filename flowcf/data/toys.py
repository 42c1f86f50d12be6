r"""Two-dimensional toy classification data sets.

Each toy is a generator ``(n_samples, noise, rng) -> (x, y)`` with ``x`` of shape
:math:`(N, 2)` and integer labels ``y`` of shape :math:`(N,)`. The :func:`toy` decorator keeps
it in :data:`TOYS` and registers a loader in :data:`~flowcf.data.base.DATASETS` that reads
``n_samples``, ``noise``, ``val``, ``test``, ``scaling`` and ``folds`` from the data config and
splits and scales with :func:`~flowcf.data.base.split_and_scale`. The run seed seeds both the
generator and the split, unless ``random_state`` seeds the generator (the PPCEF authors' moons:
``make_moons(1024, noise=0.1, random_state=42)``, ``conf/data/ppcef/moons.yaml``).

References:
    | FFJORD: Free-form Continuous Dynamics for Scalable Reversible Generative Models
    | (Grathwohl et al., 2019)
    | https://arxiv.org/abs/1810.01367

    | Composing graphical models with neural networks for structured representations and fast
    | inference (Johnson et al., 2016)
    | https://arxiv.org/abs/1603.06277

Examples:
    >>> x, y = TOYS["pinwheel"](1000, 0.1, 0)
    >>> x.shape, sorted(set(y.tolist()))
    ((1000, 2), [0, 1, 2, 3, 4])
    >>> ds = DATASETS.build(
    ...     "moons", {"n_samples": 1024, "noise": 0.1, "val": 0.2, "test": 0.2,
    ...     "scaling": "minmax"}, seed=42,
    ... )
    >>> ds.num_classes, ds.dim
    (2, 2)
"""

from collections.abc import Callable, Mapping

import numpy as np
from sklearn.datasets import make_blobs, make_circles, make_moons

from flowcf.data.base import DATASETS, Dataset, split_and_scale

__all__ = ["TOYS", "toy"]

Rng = int | np.random.Generator
ToyGenerator = Callable[[int, float, Rng], tuple[np.ndarray, np.ndarray]]

TOYS: dict[str, ToyGenerator] = {}
"""The raw toy generators ``(n_samples, noise, rng) -> (x, y)``, by name."""


def toy(name: str) -> Callable[[ToyGenerator], ToyGenerator]:
    """Decorator that registers a toy generator as the dataset ``name``."""

    def decorator(generate: ToyGenerator) -> ToyGenerator:
        @DATASETS.register(name)
        def load(cfg: Mapping, seed: int) -> Dataset:
            state = cfg.get("random_state")
            x, y = generate(cfg["n_samples"], cfg["noise"], seed if state is None else state)
            return split_and_scale(
                x,
                y,
                name=name,
                feature_names=["x1", "x2"],
                seed=seed,
                val=cfg["val"],
                test=cfg["test"],
                scaling=cfg["scaling"],
                folds=cfg.get("folds"),
                fold=cfg.get("fold", 0),
            )

        TOYS[name] = generate
        return generate

    return decorator


def _random_state(rng: Rng) -> int:
    """A scikit-learn ``random_state``: the seed itself, or one drawn from a generator.

    Passing the seed through keeps e.g. ``make_moons(1024, noise=0.1, random_state=42)``, the
    PPCEF authors' moons, bit for bit.
    """
    return int(rng.integers(2**32)) if isinstance(rng, np.random.Generator) else int(rng)


def _balanced_labels(n_samples: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffled labels with class sizes that differ by at most one."""
    return rng.permutation(np.arange(n_samples) % num_classes)


@toy("moons")
def moons(n_samples: int, noise: float, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, scikit-learn's ``make_moons``; ``noise`` is its std."""
    return make_moons(n_samples, noise=noise, random_state=_random_state(rng))


@toy("circles")
def circles(n_samples: int, noise: float, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles (radii 1 and 0.5), scikit-learn's ``make_circles``."""
    return make_circles(n_samples, noise=noise, factor=0.5, random_state=_random_state(rng))


@toy("blobs")
def blobs(n_samples: int, noise: float, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Three isotropic Gaussians at the corners of a triangle of circumradius 2.

    ``noise`` is the clusters' standard deviation (``cluster_std`` of ``make_blobs``).
    """
    angles = np.pi / 2 + 2 * np.pi / 3 * np.arange(3)
    centers = 2 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return make_blobs(
        n_samples, centers=centers, cluster_std=noise, random_state=_random_state(rng)
    )


@toy("pinwheel")
def pinwheel(n_samples: int, noise: float, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Five curved arms (Johnson et al., 2016, as in FFJORD); the label is the arm.

    Radial std 0.3, rate 0.25, and ``noise`` is the tangential std (FFJORD uses 0.1).
    """
    rng = np.random.default_rng(rng)
    y = _balanced_labels(n_samples, 5, rng)
    features = rng.normal(size=(n_samples, 2)) * np.array([0.3, noise]) + np.array([1.0, 0.0])
    angles = 2 * np.pi / 5 * y + 0.25 * np.exp(features[:, 0])
    cos, sin = np.cos(angles), np.sin(angles)
    x = np.stack(
        [features[:, 0] * cos + features[:, 1] * sin, features[:, 1] * cos - features[:, 0] * sin],
        axis=-1,
    )
    return 2 * x, y


@toy("8gaussians")
def eight_gaussians(n_samples: int, noise: float, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Eight isotropic Gaussians with std ``noise`` evenly on a circle of radius 2 (FFJORD).

    The label is the Gaussian.
    """
    rng = np.random.default_rng(rng)
    y = _balanced_labels(n_samples, 8, rng)
    angles = 2 * np.pi / 8 * y
    centers = 2 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return centers + noise * rng.normal(size=(n_samples, 2)), y


@toy("2spirals")
def two_spirals(n_samples: int, noise: float, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals of 1.5 turns (FFJORD); the label is the spiral.

    As in FFJORD, points get a uniform jitter in [0, 0.5]^2 before the second spiral is
    mirrored, then everything is divided by 3 and gets Gaussian noise of std ``noise``.
    """
    rng = np.random.default_rng(rng)
    y = _balanced_labels(n_samples, 2, rng)
    t = np.sqrt(rng.uniform(size=n_samples)) * 3 * np.pi
    x = np.stack([-np.cos(t) * t, np.sin(t) * t], axis=-1) + 0.5 * rng.uniform(size=(n_samples, 2))
    x = (1 - 2 * y)[:, None] * x / 3
    return x + noise * rng.normal(size=(n_samples, 2)), y


@toy("checkerboard")
def checkerboard(n_samples: int, noise: float, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """A 4 x 4 board of unit squares on [-2, 2]^2; the label is the square's colour.

    Points are uniform on the board and labelled ``(floor(x1) + floor(x2)) mod 2``; then they
    get Gaussian jitter of std ``noise`` (0 keeps the squares sharp), which blurs the colour
    boundaries as ``noise`` does for the moons.
    """
    rng = np.random.default_rng(rng)
    x = rng.uniform(-2, 2, size=(n_samples, 2))
    y = np.floor(x).astype(np.int64).sum(axis=-1) % 2
    return x + noise * rng.normal(size=(n_samples, 2)), y
