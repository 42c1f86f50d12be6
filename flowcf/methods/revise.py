"""REVISE: counterfactuals by gradient search in a VAE's latent space.

z starts at the posterior mean of x and minimises CE(f(G(z)), ỹ) + λ·‖G(z) − x‖₁ (L1 in the input
space, against x itself) with Adam until the classifier assigns G(z) to ỹ (the paper's
Algorithm 1; λ = 0.5, lr 0.1 and ≤ 1000 steps as in CARLA's implementation, which instead runs
every step and keeps the lowest-loss valid iterate: ``patience=max_steps``). A factual that does
not flip gets no counterfactual (it counts against coverage).

References:
    | Towards Realistic Individual Recourse and Actionable Explanations in Black-Box Decision
    | Making Systems (Joshi et al., 2019) https://arxiv.org/abs/1907.09615

    | CARLA: A Python Library to Benchmark Algorithmic Recourse and Counterfactual Explanation
    | Algorithms (Pawelczyk et al., 2021) https://arxiv.org/abs/2108.00783
"""

from flowcf.methods.base import METHODS, GradientSearch

__all__ = ["REVISE"]


@METHODS.register("revise")
class REVISE(GradientSearch):
    """Gradient search in the VAE's latent space that keeps the best valid iterate."""
