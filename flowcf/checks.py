"""Every value of a composed config checked before any work: one line naming the key.

A registered part (``classifier``, ``autoencoder``, ``vae``, ``model``, each method, their loss
terms and ``train`` sections) is checked against its factory's signature, whose annotations
carry the rules (:mod:`flowcf.rules`): the factories stay the one source of truth for their
options. The keys no factory takes are in :data:`KEYS` and, per dataset, :data:`DATA`. A key
without a rule is unknown, and the closest known keys are suggested.

Examples:
    >>> from hydra import compose, initialize_config_dir
    >>> from flowcf.cli import CONFIG_DIR
    >>> with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
    ...     cfg = compose("config", overrides=["model.layers=0"])
    >>> check_config(cfg)
    Traceback (most recent call last):
    ...
    flowcf.errors.UserError: model.layers must be a whole number ≥ 1, got 0
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from flowcf import rules
from flowcf.data import DATASETS
from flowcf.data.base import SCALING
from flowcf.data.toys import TOYS
from flowcf.density import THRESHOLDS
from flowcf.errors import UserError
from flowcf.flows import FLOWS, IMAGE_FLOWS
from flowcf.methods import METHODS
from flowcf.metrics import METRICS
from flowcf.metrics.base import POPULATIONS
from flowcf.networks import AUTOENCODERS, CLASSIFIERS
from flowcf.networks.lpips import NETS
from flowcf.rules import Quantile, Rule, at_least, between, each, one_of, optional, rule_of, whole
from flowcf.training import OBJECTIVES, check_train

__all__ = [
    "DATA",
    "KEYS",
    "PARTS",
    "PIPELINE",
    "RENAMED",
    "UNKEYED",
    "Part",
    "check_config",
    "unknown_key",
]

FLAG = rule_of(bool)
TEXT = rule_of(str)
COUNT = whole(1)
DEVICE = Rule(
    "one of: auto, cpu, cuda, cuda:<index>",
    lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
)

#: The keys outside the parts and the data, by their dotted names.
KEYS: dict[str, Rule] = {
    "stage": TEXT,
    "seed": whole(0),
    "device": DEVICE,
    "threads": optional(COUNT),
    "amp": FLAG,
    "optimized_metric": optional(one_of(*METRICS)),
    "force": FLAG,
    "resume": FLAG,
    "checkpoint_every": at_least(0),
    "progress": FLAG,
    "verbose": FLAG,
    "space": one_of("latent", "pixel"),
    "factuals.split": one_of("train", "val", "test"),
    "factuals.class": optional(whole(0)),
    "factuals.limit": optional(COUNT),
    "plots.rows": COUNT,
    "plots.trajectory": each(TEXT),
    "plots.per_pair": COUNT,
    "plots.frames": COUNT,
    "paths.store": TEXT,
    "paths.report": optional(TEXT),
    "metrics.names": each(one_of(*METRICS)),
    "metrics.plausibility_quantile": rule_of(Quantile),
    "metrics.threshold": one_of(*THRESHOLDS),
    "metrics.over": Rule(
        f"a mapping of metric names to one of: {', '.join(POPULATIONS)}",
        lambda v: (
            isinstance(v, dict) and all(k in METRICS and p in POPULATIONS for k, p in v.items())
        ),
    ),
    "reference": Rule("a mapping with file, data and metrics", lambda v: v is None),
    "reference.file": TEXT,
    "reference.data": Rule("a mapping of data names to the file's", lambda v: isinstance(v, dict)),
    "reference.metrics": Rule(
        "a mapping of metric names to the file's columns",
        lambda v: isinstance(v, dict) and all(k in METRICS for k in v),
    ),
    "metrics.log_density_floor_quantile": rule_of(Quantile),
    "metrics.lpips_backbone": optional(TEXT),
    "metrics.lpips_net": one_of(*NETS),
    "metrics.fid_weights": optional(TEXT),
    "metrics.batch_size": COUNT,
}

#: Keys that were renamed, by their old dotted name: the lightning-hydra-template's name for the
#: metric a sweeper optimises (``model.objective`` stays the flow's training objective).
RENAMED = {"objective": "optimized_metric"}

#: A method's keys that the pipeline reads rather than the method's factory.
PIPELINE: dict[str, Rule] = {
    "target": Rule(
        "next, flip, a class index ≥ 0 or a class name",
        lambda v: isinstance(v, str) or whole(0).test(v),
    ),
    "latent": optional(one_of("autoencoder", "vae")),
}


@dataclass(frozen=True)
class Part:
    """A config group that trains a model: the store ``kind`` it is kept under, the groups its
    training depends on besides ``data`` and ``seed``, and whether ``amp=true`` trains it in
    mixed precision."""

    kind: str
    depends: tuple[str, ...] = ()
    amp: bool = True


#: The trained parts by config group; the flow (``model``) keeps float32 for its log-dets.
PARTS: dict[str, Part] = {
    "classifier": Part("classifier"),
    "autoencoder": Part("autoencoder"),
    "vae": Part("vae"),
    "model": Part("flow", depends=("autoencoder",), amp=False),
}
#: Keys that say where things are or how many factuals to explain, not what a model learns:
#: left out of store keys (counterfactuals are keyed by the resolved ``factuals``), as are the
#: data keys that located the files a data set read (``Dataset.files``).
UNKEYED = ("root", "download", "num_factuals", "workers", "cache")

SPLIT = {
    "val": between(0, 1),
    "test": between(0, 1),
    "folds": optional(whole(2)),
    "fold": whole(0),
    "scaling": SCALING,
}
TABLE = {
    **SPLIT,
    "root": TEXT,
    "path": TEXT,
    "schema": Rule("a YAML file or a mapping", lambda v: isinstance(v, str | dict)),
    "values": optional(TEXT),
    "separator": TEXT,
    "header": FLAG,
}
SIZE = optional(COUNT)
SEED = optional(whole(0))
PAIRS = Rule(
    "a list of [class, other class] pairs",
    lambda v: (
        isinstance(v, list)
        and all(each(whole(0)).test(p) and len(p) == 2 and p[0] != p[1] for p in v)
    ),
)
#: The keys of each dataset's config (besides ``name``, ``kind`` and ``num_factuals``).
DATA: dict[str, dict[str, Rule]] = {
    **{
        name: {**SPLIT, "n_samples": COUNT, "noise": at_least(0), "random_state": SEED}
        for name in TOYS
    },
    "wine": SPLIT,
    "digits": SPLIT,
    "law": {**SPLIT, "root": TEXT, "path": TEXT},
    "blobs_csv": {**SPLIT, "root": TEXT, "path": TEXT},
    "csv": TABLE,
    "german_credit": TABLE,
    "heloc": TABLE,
    "mnist": {
        "root": TEXT,
        "download": FLAG,
        "size": COUNT,
        "val": COUNT,
        "train_size": SIZE,
        "test_size": SIZE,
        "pairs": PAIRS,
    },
    "celeba": {
        "root": TEXT,
        "size": COUNT,
        "crop": COUNT,
        "attribute": TEXT,
        "attributes": each(TEXT),
        "train_size": SIZE,
        "val_size": SIZE,
        "test_size": SIZE,
        "workers": whole(0),
        "cache": optional(TEXT),
    },
}
COMMON = {"kind": TEXT, "num_factuals": optional(COUNT)}


def unknown_key(key: str, known: Iterable[str], otherwise: str) -> UserError:
    """The error of an unknown ``key``: its new name if it was renamed (:data:`RENAMED`), else
    the closest known keys, or ``otherwise``."""
    if key in RENAMED:
        return UserError(f"{key} is now {RENAMED[key]}: set {RENAMED[key]}=<value> instead")
    return rules.unknown_key(key, known, otherwise)


def check_keys(node: Mapping[str, Any], rules: Mapping[str, Rule], prefix: str = "") -> None:
    """Checks every key of ``node`` against its rule, naming it ``prefix`` + key; a key without
    a rule is unknown, with the closest known ones suggested."""
    for key, value in node.items():
        name = f"{prefix}{key}"
        if key not in rules:
            raise unknown_key(name, [f"{prefix}{k}" for k in rules], "flowcf reads no such key")
        if value == "???":
            raise UserError(f"{name} is required: set {name}=<value>")
        rules[key].check(name, value)


def check_data(data: Mapping[str, Any]) -> None:
    """The ``data`` config: its dataset's keys, and a split that leaves training rows."""
    one_of(*DATASETS).check("data.name", data.get("name"))
    rules = {**COMMON, **DATA[data["name"]]}
    check_keys({k: v for k, v in data.items() if k != "name"}, rules, "data.")
    folds = data.get("folds")
    if "test" in rules:  # split by fractions
        test = 1 / folds if folds else data["test"]
        if data["val"] + test >= 1:
            raise UserError(
                f"data.val + data.test (1 / data.folds with folds) must be < 1 to leave "
                f"training rows, got {data['val']} + {test:g}"
            )
    if data.get("fold") is not None and not (folds and data["fold"] < folds):
        raise UserError(f"data.fold must be in 0..data.folds - 1, got {data['fold']}")


def check_parts(cfg: Mapping[str, Any]) -> None:
    """The registered parts against their factories' signatures."""
    CLASSIFIERS.check_node("classifier", cfg["classifier"], skip=2, drop=("train",))
    check_train("classifier.train", cfg["classifier"].get("train", {}))
    for group in ("autoencoder", "vae"):
        if group in cfg:
            AUTOENCODERS.check_node(group, cfg[group], skip=1, drop=("train",))
            if "train" in cfg[group]:
                check_train(f"{group}.train", cfg[group]["train"])
    flows = IMAGE_FLOWS if cfg["space"] == "pixel" else FLOWS
    flows.check_node("model", cfg["model"], skip=2, drop=("train", "objective", "noise"))
    one_of(*OBJECTIVES).check("model.objective", cfg["model"].get("objective", "mle"))
    at_least(0).check("model.noise", cfg["model"].get("noise", 0.0))
    check_train("model.train", cfg["model"].get("train", {}))
    methods = cfg.get("methods") or {None: cfg["method"]}
    for name, method in methods.items():
        key = "method" if name is None else f"methods.{name}"
        METHODS.check_node(key, method, skip=1, drop=tuple(PIPELINE), given=("progress",))
        check_keys({k: method[k] for k in PIPELINE if k in method}, PIPELINE, f"{key}.")
        explained, pairs = cfg["factuals"]["class"], cfg["data"].get("pairs")
        if explained is not None and not pairs and str(method.get("target")) == str(explained):
            raise UserError(
                f"{key}.target {explained} is factuals.class itself: a counterfactual must "
                "change the class; choose another target or 'next'"
            )


def check_config(cfg: DictConfig) -> None:
    """Checks every value of the composed config ``cfg``; the first bad one is a
    :class:`UserError` naming its key and what the key accepts."""
    try:
        values = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        raise UserError(f"{key}: {str(error).splitlines()[0]}" if key else str(error)) from None
    parts = ("data", "classifier", "autoencoder", "vae", "model", "method", "methods")
    flat = {}
    for key, value in values.items():
        if key in parts:
            continue
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    check_keys(flat, KEYS)
    check_data(values["data"])
    check_parts(values)
