"""Every config in ``conf/`` composes and resolves, and names a registered part."""

import pytest
from omegaconf import OmegaConf

from flowcf.cli import CONFIG_DIR, config_choices
from flowcf.data import DATASETS
from flowcf.flows import FLOWS
from flowcf.methods import METHODS
from flowcf.metrics import METRICS
from flowcf.networks import AUTOENCODERS, CLASSIFIERS

REGISTRIES = {
    "data": DATASETS,
    "model": FLOWS,
    "classifier": CLASSIFIERS,
    "autoencoder": AUTOENCODERS,
    "method": METHODS,
}
CHOICES = [(group, name) for group, names in config_choices().items() for name in names]


def registered_name(group: str, choice: str) -> str:
    """The part a config file names: the choice itself, or a variant's ``name`` key."""
    return OmegaConf.load(CONFIG_DIR / group / f"{choice}.yaml").name if "/" in choice else choice


@pytest.mark.parametrize(("group", "choice"), CHOICES)
def test_config_composes(compose, group, choice):
    resolved = OmegaConf.to_container(compose(f"{group}={choice}"), resolve=True)
    for method in resolved.get("methods", {}).values():
        assert method["name"] in METHODS
    if group in REGISTRIES:  # a variant in a subfolder (data=ppcef/moons) names its part
        assert resolved[group]["name"] == registered_name(group, choice)
        assert resolved[group]["name"] in REGISTRIES[group]
    if resolved.get("optimized_metric") is not None:  # what an Optuna preset maximizes
        assert resolved["optimized_metric"] in METRICS
    if group == "metrics":
        assert all(name in METRICS for name in resolved["metrics"]["names"])


def test_every_registered_part_has_a_config():
    choices = config_choices()
    for group, registry in REGISTRIES.items():
        names = {registered_name(group, choice) for choice in choices[group]}
        assert sorted(registry) == sorted(names), group
