"""Counterfactual search: it flips a fixed classifier, batches exactly, stops per sample."""

import pytest
import torch
from torch import nn

from flowcf.density import class_log_prob
from flowcf.factuals import targets_for
from flowcf.flows import FLOWS
from flowcf.losses import LOSSES
from flowcf.methods import METHODS
from flowcf.methods.base import Search
from flowcf.setting import Setting

PPCEF = {
    "losses": {
        "distance": {"name": "l2", "weight": 1.0},
        "decision": {"name": "margin", "eps": 0.02, "weight": 100.0},
        "plausibility": {"name": "nll_hinge", "quantile": 0.5, "weight": 100.0},
    },
    "lr": 5e-2,
    "max_steps": 2000,
    "progress": False,
}
WACHTER = {
    "losses": {
        "distance": {"name": "mad", "weight": 1.0},
        "decision": {"name": "squared", "weight": 0.1},
    },
    "lr": 5e-2,
    "max_steps": 2000,
    "progress": False,
}


def fixed_models() -> Setting:
    """Class 1 iff x₀ > 1 (a fixed linear classifier); an untrained flow: p(x | y) = N(0, I)."""
    torch.manual_seed(0)
    classifier = nn.Linear(2, 2)
    with torch.no_grad():
        classifier.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        classifier.bias.copy_(torch.tensor([1.0, -1.0]))
    flow = FLOWS.build("realnvp", 2, 2, layers=2, hidden=8)
    x_train = torch.randn(2000, 2)
    y_train = classifier(x_train).argmax(dim=1)
    return Setting(
        classifier.requires_grad_(False), flow.requires_grad_(False), x_train, y_train, 2
    )


@pytest.mark.parametrize(("name", "options"), [("ppcef", PPCEF), ("wachter", WACHTER)])
def test_counterfactual_flips_the_classifier(name, options):
    models = fixed_models()
    x = torch.tensor([[-1.0, 0.5], [0.0, -1.0], [0.5, 2.0]])
    y = torch.zeros(3, dtype=torch.long)
    cfs = METHODS.build(name, models, **options).explain(x, y, targets_for(y, "next", 2))
    assert cfs.found.all()
    assert (models.classifier(cfs.x_cf).argmax(dim=1) == 1).all()
    assert (cfs.x_cf[:, 0] > 1.0).all()
    assert (cfs.steps < options["max_steps"]).all()


def test_ppcef_reaches_the_plausibility_threshold_and_stays_close():
    models = fixed_models()
    x = torch.tensor([[-1.0, 3.0]])
    cfs = METHODS.build("ppcef", models, **PPCEF).explain(
        x, torch.zeros(1).long(), torch.ones(1).long()
    )
    tau = LOSSES.build("nll_hinge", models).tau[1]
    log_p = class_log_prob(models.flow, cfs.x_cf, torch.ones(1).long(), 2)
    assert log_p.item() >= tau.item() - 1e-4
    # the closest point with x₀ > 1 and the density above τ is near (1, ·): not far beyond
    assert cfs.x_cf[0, 0] < 1.5


def test_batch_equals_one_factual_at_a_time():
    models = fixed_models()
    x = torch.randn(6, 2) - torch.tensor([2.0, 0.0])
    y = torch.zeros(6, dtype=torch.long)
    target = targets_for(y, "next", 2)
    method = METHODS.build("ppcef", models, **PPCEF)
    batched = method.explain(x, y, target)
    for i in range(len(x)):
        single = method.explain(x[i : i + 1], y[i : i + 1], target[i : i + 1])
        torch.testing.assert_close(single.x_cf[0], batched.x_cf[i], atol=1e-5, rtol=0)
        assert single.steps[0] == batched.steps[i]


def test_dropping_finished_factuals_changes_nothing_for_the_others():
    """Factuals finishing at many different steps (each one leaves the working set then) get
    what each gets searched alone, where nothing is ever dropped."""
    models = fixed_models()
    x = torch.stack([torch.linspace(-3.0, 0.8, 8), torch.linspace(-1.0, 1.0, 8)], dim=1)
    y = torch.zeros(8, dtype=torch.long)
    method = METHODS.build("ppcef", models, **PPCEF)
    batched = method.explain(x, y, torch.ones(8).long())
    assert len(batched.steps.unique()) >= 6
    for i in range(len(x)):
        single = method.explain(x[i : i + 1], y[i : i + 1], torch.ones(1).long())
        torch.testing.assert_close(single.x_cf[0], batched.x_cf[i], atol=1e-5, rtol=0)
        assert single.steps[0] == batched.steps[i]


def test_search_descends_as_torch_adam():
    torch.manual_seed(0)
    z = torch.randn(5, 3)
    search = Search.start(z, z, torch.zeros(5).long(), {})
    reference = z.clone().requires_grad_(True)
    adam = torch.optim.Adam([reference], lr=0.01)
    for step in range(1, 50):
        grad = torch.randn(5, 3)
        with torch.no_grad():
            search.descend(grad, step, 0.01)
        reference.grad = grad
        adam.step()
    assert torch.equal(search.variable, reference)


def test_finished_samples_stop_while_others_continue():
    models = fixed_models()
    x = torch.tensor([[1.5, 0.0], [-3.0, 0.0]])  # the first is already valid and plausible
    y = torch.zeros(2, dtype=torch.long)
    cfs = METHODS.build("ppcef", models, **PPCEF).explain(x, y, torch.ones(2).long())
    assert cfs.steps[0] == 0 and cfs.steps[1] > 0
    torch.testing.assert_close(cfs.x_cf[0], x[0])


def test_on_step_sees_every_step_and_a_factual_ends_at_its_counterfactual():
    models = fixed_models()
    x = torch.tensor([[1.5, 0.0], [-3.0, 0.0]])
    y = torch.zeros(2, dtype=torch.long)
    recorded = []
    cfs = METHODS.build("ppcef", models, **PPCEF).explain(
        x, y, torch.ones(2).long(), on_step=lambda step, x_cf: recorded.append((step, x_cf))
    )
    assert [step for step, _ in recorded] == list(range(int(cfs.steps.max()) + 1))
    torch.testing.assert_close(recorded[0][1], x)
    for i in range(2):
        torch.testing.assert_close(recorded[int(cfs.steps[i])][1][i], cfs.x_cf[i])


def test_a_term_with_weight_zero_is_not_built():
    models = fixed_models()
    off = {**PPCEF["losses"], "plausibility": {"name": "nll_hinge", "weight": 0.0}}
    method = METHODS.build("ppcef", models, **{**PPCEF, "losses": off})
    assert set(method.terms) == set(method.weights) == {"distance", "decision"}


def test_non_finite_loss_stops_that_factual_without_a_counterfactual():
    models = fixed_models()
    x = torch.tensor([[float("nan"), 0.0], [-1.0, 0.0]])
    y = torch.zeros(2, dtype=torch.long)
    cfs = METHODS.build("ppcef", models, **PPCEF).explain(x, y, torch.ones(2).long())
    assert cfs.found.tolist() == [False, True]
    assert cfs.x_cf[0].isnan().all() and cfs.x_cf[1].isfinite().all()


def test_wachter_grows_lambda_of_the_searching_factuals_every_lambda_every_steps():
    models = fixed_models()
    method = METHODS.build("wachter", models, **WACHTER, lambda_every=2, lambda_growth=2.0)
    weights = {"decision": torch.ones(2), "distance": torch.ones(2)}
    method.schedule(0, weights)
    assert weights["decision"].tolist() == [1.0, 1.0]
    method.schedule(1, weights)
    assert weights["decision"].tolist() == [2.0, 2.0]
    assert weights["distance"].tolist() == [1.0, 1.0]


def test_targets():
    y = torch.tensor([0, 1, 2])
    assert targets_for(y, "next", 3).tolist() == [1, 2, 0]
    assert targets_for(y, 2, 3).tolist() == [2, 2, 2]


def test_every_search_keeps_the_domain_immutables_and_monotone_directions():
    """x₀ may only grow and at most to 1.5 (class 1 needs x₀ > 1), x₁ never changes; PLACE on
    the identity autoencoder (as on tabular data) is held to it like the input-space methods."""
    from dataclasses import replace

    from flowcf.data.constraints import Constraints
    from flowcf.networks.autoencoders import IdentityAutoencoder

    constraints = Constraints(
        feature=torch.tensor([0, 1]), names=["x0", "x1"], direction=torch.tensor([1.0, 0.0]),
        mutable=torch.tensor([1.0, 0.0]), integer=torch.zeros(2), shift=torch.zeros(2),
        scale=torch.ones(2), low=torch.tensor([-2.0, -3.0]), high=torch.tensor([1.5, 3.0]),
        groups=[],
    )  # fmt: skip
    place = {"losses": {"decision": {"name": "margin", "eps": 0.05, "scale": "log",
                                     "weight": 10.0},
                        "distance": {"name": "l2", "space": "latent", "weight": 1.0}},
             "lr": 5e-2, "max_steps": 2000, "progress": False}  # fmt: skip
    x = torch.tensor([[-1.0, 0.5], [0.0, -1.0], [0.5, 0.2]])
    y = torch.zeros(3, dtype=torch.long)
    for name, options in (("ppcef", PPCEF), ("wachter", WACHTER), ("place", place)):
        models = replace(fixed_models(), constraints=constraints)
        if name == "place":
            models.latent = IdentityAutoencoder((2,))
        cfs = METHODS.build(name, models, **options).explain(x, y, targets_for(y, "next", 2))
        assert (models.classifier(cfs.x_cf).argmax(dim=1) == 1).all(), name
        assert torch.equal(cfs.x_cf[:, 1], x[:, 1]) and (cfs.x_cf[:, 0] >= x[:, 0]).all(), name
        assert (cfs.x_cf[:, 0] <= 1.5).all(), name


def test_unfinished_valid_returns_an_accepted_candidate():
    # τ at the top of the training densities and few steps: the hinge is rarely met in time.
    options = {**PPCEF, "max_steps": 100, "unfinished": "valid"}
    options["losses"] = {**PPCEF["losses"], "plausibility": {"name": "nll_hinge", "quantile": 1.0}}
    models = fixed_models()
    x = torch.tensor([[-1.0, 0.5], [0.0, -1.0], [0.5, 2.0]])
    y = torch.zeros(3, dtype=torch.long)
    cfs = METHODS.build("ppcef", models, **options).explain(x, y, targets_for(y, "next", 2))
    assert cfs.found.all() and (models.classifier(cfs.x_cf).argmax(dim=1) == 1).all()


def test_clarity_flips_the_classifier_and_charges_its_ensemble_to_the_time():
    from dataclasses import replace

    from flowcf.networks.autoencoders import IdentityAutoencoder

    models = replace(fixed_models(), latent=IdentityAutoencoder((2,)))
    x = torch.tensor([[-1.0, 0.5], [0.0, -1.0]])
    y = torch.zeros(2, dtype=torch.long)
    losses = {
        "decision": {"name": "ensemble_ce", "members": 2, "epochs": 3, "weight": 1.0},
        "distance": {"name": "l2", "space": "latent", "weight": 0.1},
    }
    method = METHODS.build("clarity", models, losses=losses, lr=0.05, max_steps=500,
                           progress=False)  # fmt: skip
    cfs = method.explain(x, y, targets_for(y, "next", 2))
    assert cfs.found.all() and (models.classifier(cfs.x_cf).argmax(dim=1) == 1).all()
    assert cfs.fit_seconds == method.fit_seconds > 0
    without_ensemble = {"distance": losses["distance"], "decision": {"name": "ce"}}
    plain = METHODS.build("revise", models, losses=without_ensemble, lr=0.05, max_steps=5)
    assert plain.fit_seconds < method.fit_seconds


def test_whatever_a_method_returns_is_moved_into_the_domain():
    from flowcf.counterfactuals import Counterfactuals
    from flowcf.data.constraints import Constraints

    box = Constraints.box(["a", "b"], torch.tensor([0.0, -1.0]), torch.tensor([1.0, 1.0]),
                          torch.zeros(2), torch.ones(2))  # fmt: skip
    x = torch.tensor([[0.5, 0.0], [0.2, 0.2]])
    nan = float("nan")
    alternatives = torch.tensor([[[3.0, -5.0], [0.7, 0.1]], [[nan, nan], [nan, nan]]])
    cfs = Counterfactuals(x, alternatives[:, 0], torch.zeros(2).long(), torch.ones(2).long(),
                          torch.tensor([True, False]), torch.zeros(2).long(), 0.0,
                          alternatives=alternatives).within(box)  # fmt: skip
    assert torch.equal(cfs.x_cf[0], torch.tensor([1.0, -1.0])) and cfs.x_cf[1].isnan().all()
    assert torch.equal(cfs.alternatives[0, 1], torch.tensor([0.7, 0.1]))
    assert cfs.alternatives[1].isnan().all() and cfs.within(None) is cfs
