r"""Convolutional autoencoders whose latent space counterfactual methods search.

Every factory in :data:`AUTOENCODERS` takes the image shape ``(C, H, W)`` (without the batch)
and keyword options, and returns a module with ``encode(x) -> z`` of shape :math:`(B, d)`,
``decode(z) -> x`` of shape :math:`(B, C, H, W)` in :math:`[0, 1]`, and ``loss(x)``, the scalar
training loss (mean over the batch), so ``flowcf.training.fit`` trains it with
``lambda model, x, y: model.loss(x)``.

Both models share one architecture: ``depth`` stride-2 convolutions (4 x 4 kernels, batch norm,
ReLU) whose widths double from ``channels`` up to ``8 * channels``, then a linear layer to the
code; the decoder mirrors it with transposed convolutions and ends in per-pixel logits, which
``decode`` passes through a sigmoid. By default ``depth`` halves the image down to 4 x 4
(3 for 32 x 32 MNIST, 4 for 64 x 64, ...). Pixels are modelled as Bernoulli: the reconstruction
loss is the binary cross-entropy summed over the pixels of an image, in nats.

References:
    | PluGeN: Multi-Label Conditional Generation From Pre-Trained Models
    | (Wołczyk et al., 2022)
    | https://arxiv.org/abs/2109.09011

    | Auto-Encoding Variational Bayes (Kingma & Welling, 2014)
    | https://arxiv.org/abs/1312.6114

Examples:
    >>> import torch
    >>> vae = AUTOENCODERS.build("conv_vae", (1, 32, 32), latent_dim=8)
    >>> x = torch.rand(5, 1, 32, 32)
    >>> mu, logvar = vae.posterior(x)
    >>> mu.shape, vae.decode(vae.encode(x)).shape
    (torch.Size([5, 8]), torch.Size([5, 1, 32, 32]))
"""

import math
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.nn.functional import binary_cross_entropy_with_logits

from flowcf.errors import UserError
from flowcf.registry import Registry
from flowcf.rules import Count, NonNegative

__all__ = ["AUTOENCODERS", "ConvAutoencoder", "ConvVAE", "IdentityAutoencoder", "input_space"]

AUTOENCODERS = Registry("autoencoder")
"""Autoencoder factories ``(shape, **options) -> nn.Module``, by name."""


def input_space(autoencoder: nn.Module | None) -> nn.Module | None:
    """The space an autoencoder maps to, as the autoencoder, or ``None`` for the input space
    itself (no autoencoder, or the identity)."""
    has_parameters = autoencoder is not None and next(autoencoder.parameters(), None) is not None
    return autoencoder if has_parameters else None


@AUTOENCODERS.register("conv_ae")
class ConvAutoencoder(nn.Module):
    r"""A deterministic convolutional autoencoder, as PLACE pairs with a latent flow (PluGeN).

    ``loss(x)`` is the binary cross-entropy between ``x`` and its reconstruction, summed over
    pixels and averaged over the batch.

    Arguments:
        shape: The image shape ``(C, H, W)``; ``H`` and ``W`` divisible by ``2**depth``.
        latent_dim: The latent dimension :math:`d`.
        channels: The width of the first convolution.
        depth: The number of stride-2 convolutions; ``None`` halves down to 4 x 4.
    """

    codes_per_dim = 1
    """How many encoder outputs each latent dimension gets (a VAE's mean and log-variance)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        *,
        latent_dim: Count = 32,
        channels: Count = 16,
        depth: Count | None = None,
    ):
        super().__init__()
        if len(shape) != 3:
            raise UserError(
                f"the convolutional autoencoders (conv_ae, conv_vae) are for images (C, H, W), "
                f"got inputs of shape {shape}; methods in a VAE's latent space (REVISE, CLARITY) "
                "need images"
            )
        c, h, w = shape
        if depth is None:
            depth = max((min(h, w) // 4).bit_length() - 1, 1)
        if h % 2**depth or w % 2**depth:
            raise UserError(
                f"autoencoder: image size {h}x{w} must be divisible by 2**depth = {2**depth}"
            )
        widths = [c] + [channels * 2 ** min(i, 3) for i in range(depth)]
        bottom = (widths[-1], h // 2**depth, w // 2**depth)

        encoder: list[nn.Module] = []
        for a, b in pairwise(widths):
            encoder += [nn.Conv2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.ReLU()]
        self.encoder = nn.Sequential(
            *encoder, nn.Flatten(), nn.Linear(math.prod(bottom), self.codes_per_dim * latent_dim)
        )

        decoder: list[nn.Module] = [
            nn.Linear(latent_dim, math.prod(bottom)),
            nn.ReLU(),
            nn.Unflatten(1, bottom),
        ]
        for a, b in pairwise(widths[:0:-1]):
            decoder += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.ReLU()]
        self.decoder = nn.Sequential(*decoder, nn.ConvTranspose2d(widths[1], c, 4, 2, 1))

        self.shape, self.latent_dim = (c, h, w), latent_dim

    def encode(self, x: Tensor) -> Tensor:
        """The latent code :math:`z = E(x)`, shape :math:`(B, d)`."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """The image :math:`G(z)` in :math:`[0, 1]`, shape :math:`(B, C, H, W)`."""
        return self.decoder(z).sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction :math:`G(E(x))`."""
        return self.decode(self.encode(x))

    def reconstruction_nll(self, x: Tensor, z: Tensor) -> Tensor:
        r"""Per-image Bernoulli negative log-likelihood :math:`-\log p(x \mid z)` in nats,
        i.e. the binary cross-entropy summed over pixels, shape :math:`(B,)`."""
        logits = self.decoder(z)
        return binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)

    def loss(self, x: Tensor) -> Tensor:
        """The mean reconstruction loss of a batch, a scalar."""
        return self.reconstruction_nll(x, self.encode(x)).mean()


@AUTOENCODERS.register("conv_vae")
class ConvVAE(ConvAutoencoder):
    r"""A convolutional variational autoencoder, the generative model of REVISE and CLARITY.

    The encoder gives a diagonal Gaussian posterior :math:`q(z \mid x) = \mathcal{N}(\mu,
    \operatorname{diag} e^{\log \sigma^2})`, the prior is :math:`\mathcal{N}(0, I)` and pixels
    are Bernoulli. ``loss(x)`` is the negative ELBO (with a :math:`\beta`-weighted KL term)
    in nats per image, averaged over the batch, estimated with one reparameterised sample.

    Arguments:
        shape: The image shape ``(C, H, W)``.
        latent_dim: The latent dimension :math:`d`.
        channels: The width of the first convolution.
        depth: The number of stride-2 convolutions; ``None`` halves down to 4 x 4.
        beta: The weight of the KL term (1 gives the ELBO).
    """

    codes_per_dim = 2

    def __init__(
        self,
        shape: tuple[int, ...],
        *,
        latent_dim: Count = 16,
        channels: Count = 16,
        depth: Count | None = None,
        beta: NonNegative = 1.0,
    ):
        super().__init__(shape, latent_dim=latent_dim, channels=channels, depth=depth)
        self.beta = beta

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""The posterior mean :math:`\mu` and log-variance :math:`\log \sigma^2`, each
        :math:`(B, d)`."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: Tensor) -> Tensor:
        r"""The posterior mean :math:`\mu(x)`, shape :math:`(B, d)`."""
        return self.posterior(x)[0]

    def loss(self, x: Tensor) -> Tensor:
        """The mean negative ELBO of a batch, a scalar."""
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(dim=1)
        return (self.reconstruction_nll(x, z) + self.beta * kl).mean()


@AUTOENCODERS.register("identity")
class IdentityAutoencoder(nn.Module):
    """No autoencoder: ``encode`` and ``decode`` return their input, so latent-space methods
    (PLACE) and the flow work on the inputs themselves (toy and tabular data)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        if len(shape) != 1:
            raise UserError(
                f"the identity autoencoder is for vectors, got inputs of shape {shape}"
            )

    def encode(self, x: Tensor) -> Tensor:
        return x

    def decode(self, z: Tensor) -> Tensor:
        return z
