"""CLARITY: gradient search in a VAE's latent space against a smooth surrogate classifier.

Plain latent search stalls where the classifier's gradient through the decoder vanishes (the
paper's "plateau effect"). CLARITY trains an ensemble of classifiers on latent codes labelled by
the explained classifier, ``f(G(z))``, and descends the ensemble's mean target loss plus a
distance term; validity is still judged by ``f`` on the decoded image.

The paper's exact ensemble sizes, architectures and weights are not available here, so this is
a re-implementation from its description: every choice (``members``, ``hidden``, ``depth``,
``epochs``, the loss weights, ``lr``, ``patience``) is a config key in
``conf/method/clarity.yaml``.

References:
    | CLARITY: an improved gradient method for producing quality visual counterfactual
    | explanations (Theobald et al., 2022) https://arxiv.org/abs/2211.15370
"""

import logging

import torch
from torch import Tensor, nn
from torch.nn.functional import cross_entropy

from flowcf.errors import UserError
from flowcf.losses import LOSSES, Candidate, LossTerm
from flowcf.methods.base import METHODS, GradientSearch
from flowcf.networks.classifiers import CLASSIFIERS
from flowcf.rules import Count, Natural, Positive
from flowcf.setting import Setting
from flowcf.training import fit

__all__ = ["CLARITY", "LatentEnsemble"]

log = logging.getLogger(__name__)


@LOSSES.register("ensemble_ce")
class LatentEnsemble(LossTerm):
    """Mean cross-entropy of an ensemble of latent classifiers against the target class.

    The members are MLPs trained on the codes ``E(x)`` of the training data, labelled by the
    explained classifier on the decoded codes, each from its own initialisation and batches.

    Arguments:
        setting: Needs the autoencoder whose latent space is searched.
        members: Ensemble size.
        hidden: Each member's MLP width.
        depth: Each member's number of hidden layers.
        epochs: Training epochs of each member (Adam, early stopping on 10% held out).
        batch_size: Its batch size.
        lr: Its learning rate.
    """

    def __init__(
        self,
        setting: Setting,
        members: Count = 5,
        hidden: Count = 128,
        depth: Natural = 2,
        epochs: Count = 20,
        batch_size: Count = 256,
        lr: Positive = 1e-3,
    ):
        if setting.latent is None:
            raise UserError("ensemble_ce searches a latent space: set method.latent=vae")
        with torch.no_grad():
            codes = torch.cat([setting.latent.encode(x) for x in setting.x_train.split(512)])
            labels = torch.cat(
                [setting.classifier(setting.latent.decode(z)).argmax(1) for z in codes.split(512)]
            )
        held_out = torch.randperm(len(codes), device=codes.device)[: max(len(codes) // 10, 1)]
        train = torch.ones(len(codes), dtype=torch.bool, device=codes.device)
        train[held_out] = False
        self.members = nn.ModuleList()
        for member in range(members):
            model = CLASSIFIERS.build(
                "mlp", tuple(codes.shape[1:]), setting.num_classes, hidden=hidden, depth=depth
            ).to(codes.device)
            summary = fit(
                model,
                lambda m, z, y: cross_entropy(m(z), y),
                (codes[train], labels[train]),
                (codes[~train], labels[~train]),
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                patience=3,
                progress=False,
                desc=f"clarity member {member}",
            )
            log.info(
                "CLARITY ensemble member %d: held-out CE %.4f", member, summary["best_val_loss"]
            )
            self.members.append(model.requires_grad_(False))

    def __call__(self, c: Candidate) -> Tensor:
        losses = [cross_entropy(m(c.z_cf), c.y_target, reduction="none") for m in self.members]
        return torch.stack(losses).mean(dim=0)


@METHODS.register("clarity")
class CLARITY(GradientSearch):
    """Latent gradient search whose decision term is :class:`LatentEnsemble` (see the module)."""
