"""Every config in ``conf/`` composes and resolves, and names a registered part."""

import pytest
from hydra import compose, initialize_config_dir
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


@pytest.mark.parametrize(("group", "choice"), CHOICES)
def test_config_composes(group, choice):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"{group}={choice}"])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for method in resolved.get("methods", {}).values():
        assert method["name"] in METHODS
    if group in REGISTRIES:
        assert resolved[group]["name"] == choice
        assert choice in REGISTRIES[group]
    if resolved.get("optimized_metric") is not None:  # what an Optuna preset maximizes
        assert resolved["optimized_metric"] in METRICS
    if group == "metrics":
        assert all(name in METRICS for name in resolved["metrics"]["names"])


def test_every_registered_part_has_a_config():
    choices = config_choices()
    for group, registry in REGISTRIES.items():
        assert sorted(registry) == sorted(choices[group]), group
