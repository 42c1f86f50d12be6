"""Loss terms against their formulas."""

import math

import pytest
import torch
from torch import nn

from flowcf.errors import UserError
from flowcf.losses import LOSSES, Candidate, build_terms
from flowcf.setting import Setting


class FixedProba(nn.Module):
    """A 'classifier' whose logits are log of the given probabilities (first columns of x)."""

    def forward(self, x):
        return x.log()


def models(num_classes: int) -> Setting:
    x_train = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0], [3.0, 7.0], [10.0, 9.0]])
    return Setting(FixedProba(), None, x_train, torch.zeros(5).long(), num_classes)


def candidate(x_cf, y_target, x=None, z=None, z_cf=None) -> Candidate:
    x = torch.zeros_like(x_cf) if x is None else x
    return Candidate(x, x_cf, x if z is None else z, x_cf if z_cf is None else z_cf, y_target)


def test_margin_binary_and_multiclass():
    binary = LOSSES.build("margin", models(2), eps=0.05)
    p = torch.tensor([[0.3, 0.7], [0.6, 0.4]])
    assert binary(candidate(p, torch.tensor([1, 1]))).tolist() == pytest.approx([0.0, 0.15])
    multi = LOSSES.build("margin", models(3), eps=0.1)
    p = torch.tensor([[0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    assert multi(candidate(p, torch.tensor([2, 1]))).tolist() == pytest.approx([0.0, 0.15])


def test_paper_form_bounds_the_target_by_one_half_for_any_number_of_classes():
    # PLACE's eq. 2: max(0, 0.5 + ε − p(ỹ | x̃)); the margin form needs only beat the runner-up
    p = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.3, 0.6], [0.4, 0.35, 0.25]])
    y_target = torch.tensor([2, 2, 1])
    paper = LOSSES.build("margin", models(3), eps=0.1, form="paper")
    margin = LOSSES.build("margin", models(3), eps=0.1, form="margin")
    assert paper(candidate(p, y_target)).tolist() == pytest.approx([0.1, 0.0, 0.25])
    assert margin(candidate(p, y_target)).tolist() == pytest.approx([0.0, 0.0, 0.15])
    log = LOSSES.build("margin", models(3), eps=0.1, form="paper", scale="log")
    expected = [math.log(0.6 / 0.5), 0.0, math.log(0.6 / 0.35)]
    assert log(candidate(p, y_target)).tolist() == pytest.approx(expected, rel=1e-5)
    binary = torch.tensor([[0.3, 0.7], [0.6, 0.4]])
    for form in ("paper", "margin"):  # two classes: the same hinge
        term = LOSSES.build("margin", models(2), eps=0.05, form=form)
        assert term(candidate(binary, torch.tensor([1, 1]))).tolist() == pytest.approx([0, 0.15])
    with pytest.raises(UserError, match="form"):
        LOSSES.build("margin", models(3), form="runner-up")


def test_log_margin_has_the_same_zeros_and_a_gradient_where_the_target_is_hopeless():
    p = torch.tensor([[0.2, 0.3, 0.5], [0.4, 0.35, 0.25], [1e-12, 1 - 2e-12, 1e-12]])
    y_target = torch.tensor([2, 1, 0])
    plain = LOSSES.build("margin", models(3), eps=0.1)
    log = LOSSES.build("margin", models(3), eps=0.1, scale="log")
    expected = [0.0, math.log(0.5) - math.log(0.35), math.log(1 - 2e-12 + 0.1) - math.log(1e-12)]
    assert log(candidate(p, y_target)).tolist() == pytest.approx(expected, rel=1e-4)
    assert (log(candidate(p, y_target)) > 0).tolist() == (
        plain(candidate(p, y_target)) > 0
    ).tolist()
    logits = torch.tensor([[-20.0, 10.0, -20.0]], requires_grad=True)  # class 0 is hopeless
    on_logits = Setting(nn.Identity(), None, torch.zeros(1, 3), torch.zeros(1).long(), 3)
    for scale, steep in (("probability", False), ("log", True)):
        term = LOSSES.build("margin", on_logits, eps=0.1, scale=scale)
        (grad,) = torch.autograd.grad(term(candidate(logits, y_target[2:])).sum(), logits)
        assert (grad.abs().max() > 0.5) == steep, scale
    binary = LOSSES.build("margin", models(2), eps=0.05, scale="log")
    value = binary(candidate(torch.tensor([[0.7, 0.3]]), torch.tensor([1]))).item()
    assert value == pytest.approx(math.log(0.55) - math.log(0.3), rel=1e-5)
    exact = LOSSES.build("margin", on_logits, eps=0.0, scale="log")  # log ε = −∞
    assert exact(candidate(logits.detach(), y_target[2:])).item() == pytest.approx(30.0)
    with pytest.raises(UserError, match="scale"):
        LOSSES.build("margin", models(2), scale="logit")


def test_distances():
    c = candidate(torch.tensor([[3.0, -4.0]]), torch.zeros(1).long())
    assert LOSSES.build("l1", models(2))(c).item() == 7.0
    assert LOSSES.build("l2", models(2))(c).item() == 5.0
    mad = LOSSES.build("mad", models(2))  # MADs of the training columns: 1 and 2
    assert mad(c).item() == pytest.approx(3.0 / 1.0 + 4.0 / 2.0)


def test_latent_distance_uses_the_codes():
    c = candidate(
        torch.ones(1, 4),
        torch.zeros(1).long(),
        z=torch.zeros(1, 2),
        z_cf=torch.tensor([[3.0, 4.0]]),
    )
    assert LOSSES.build("l2", models(2), space="latent")(c).item() == 5.0
    assert LOSSES.build("l2", models(2))(c).item() == 2.0
    with pytest.raises(UserError, match="latent"):
        LOSSES.build("l2", models(2), space="pixels")(c)


def test_unknown_loss_and_bad_options_are_user_errors():
    with pytest.raises(UserError, match=r"losses\.decision\.name must be one of: ce, "):
        build_terms(models(2), {"decision": {"name": "hinge"}})
    with pytest.raises(UserError, match="epsilon"):
        build_terms(models(2), {"decision": {"name": "margin", "epsilon": 0.1}})
    with pytest.raises(UserError, match="weight"):
        build_terms(models(2), {"distance": {"name": "l2", "weight": -1}})
    with pytest.raises(UserError, match="flow"):
        build_terms(models(2), {"plausibility": {"name": "nll"}})
