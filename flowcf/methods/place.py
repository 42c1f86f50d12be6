"""PLACE: plausible counterfactuals in an autoencoder's latent space, scored by a flow.

z' starts at E(x) and minimises λ_dec·max(0.5 + ε − p(ỹ | G(z')), 0) + λ_dist·‖z − z'‖₂
+ λ_plaus·(−log p_F(z' | ỹ)) + λ_perc·LPIPS(x, G(z')) with Adam and early stopping; p_F is the
PluGeN-style flow on the latent codes. The terms and λs come from ``conf/method/place.yaml``.
With the identity autoencoder (toy and tabular data) the search runs on the inputs.

References:
    | Plausible Visual Counterfactual Explanations in Latent Space with Normalizing Flows
    | (PLACE; Lenkiewicz, Musiałek, Furman, Zięba, 2025)

    | PluGeN: Multi-Label Conditional Generation from Pre-trained Models
    | (Wołczyk et al., AAAI 2022) https://arxiv.org/abs/2109.09011
"""

from flowcf.methods.base import METHODS, GradientSearch

__all__ = ["PLACE"]


@METHODS.register("place")
class PLACE(GradientSearch):
    """Gradient search in the deterministic autoencoder's latent space (see the module)."""
