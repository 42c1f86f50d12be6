"""Every config in ``conf/`` composes and resolves, and names a registered part."""

import pytest
from omegaconf import OmegaConf

from flowcf.cli import config_choices
from flowcf.data import DATASETS
from flowcf.flows import FLOWS
from flowcf.methods import METHODS
from flowcf.metrics import METRICS
from flowcf.models import AUTOENCODERS, CLASSIFIERS

REGISTRIES = {
    "data": DATASETS,
    "model": FLOWS,
    "classifier": CLASSIFIERS,
    "autoencoder": AUTOENCODERS,
    "method": METHODS,
}
CHOICES = [(group, name) for group, names in config_choices().items() for name in names]


@pytest.mark.parametrize(("group", "choice"), CHOICES)
def test_config_composes(compose, group, choice):
    resolved = OmegaConf.to_container(compose(f"{group}={choice}"), resolve=True)
    for method in resolved.get("methods", {}).values():
        assert method["name"] in METHODS
    if group in REGISTRIES:
        assert resolved[group]["name"] == choice
        assert choice in REGISTRIES[group]
    if resolved.get("objective") is not None:  # what an Optuna preset maximizes
        assert resolved["objective"] in METRICS
    if group == "metrics":
        assert all(name in METRICS for name in resolved["metrics"]["names"])


def test_every_registered_part_has_a_config():
    choices = config_choices()
    for group, registry in REGISTRIES.items():
        assert sorted(registry) == sorted(choices[group]), group
