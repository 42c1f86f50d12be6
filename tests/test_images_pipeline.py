"""The MNIST pipeline end to end in this process on a few hundred images with tiny models (PLACE
Table 2 layout).

The full reproduction is ``flowcf run experiment=place_mnist`` (``make test-slow``)."""

import os
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(os.environ.get("FLOWCF_DATA", Path(__file__).parents[2] / "shared" / "data"))
TINY_MNIST = [
    "experiment=place_mnist",
    f"data.root={DATA}",
    "data.train_size=600",
    "data.val=200",
    "data.test_size=300",
    "data.num_factuals=4",
    "classifier.train.epochs=3",
    "autoencoder.latent_dim=12",
    "autoencoder.train.epochs=3",
    "vae.latent_dim=8",
    "vae.train.epochs=3",
    "model.layers=4",
    "model.hidden=32",
    "model.train.epochs=20",
    "methods.place.max_steps=100",
    "methods.place.losses.perceptual.weight=1.0",
    "methods.place.losses.perceptual.backbone=random",
    "methods.revise.max_steps=100",
    "methods.clarity.max_steps=100",
    "methods.clarity.losses.decision.members=2",
    "methods.clarity.losses.decision.epochs=2",
    "metrics.names=[coverage,validity,l2,log_density,lpips_rand,time]",
    "progress=false",
    "threads=1",
]

pytestmark = pytest.mark.skipif(not (DATA / "mnist").is_dir(), reason=f"no MNIST under {DATA}")


def test_place_mnist_runs_end_to_end(cli, capsys, tmp_path):
    assert cli("run", *TINY_MNIST, "hydra.run.dir=run") == 0
    run = tmp_path / "run"
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["method"]) == ["place", "revise", "clarity"]
    assert metrics["coverage"].between(0, 1).all() and metrics["validity"].between(0, 1).all()
    pictures = ("counterfactuals_0to8.png", "counterfactuals_1to5.png", "trajectory_place.png")
    for name in ("table.md", "table.tex", "counterfactuals.csv", *pictures):
        assert (run / name).stat().st_size > 0
    frame = pd.read_csv(run / "counterfactuals.csv")
    pairs = set(zip(frame["factual_class"], frame["target"], strict=True))
    assert pairs <= {(0, 8), (1, 5)}
    capsys.readouterr()
    assert cli("explain", *TINY_MNIST, "hydra.run.dir=again") == 0
    again = capsys.readouterr().err
    assert "creating it" not in again and "Loaded counterfactuals 'place'" in again
    assert cli("explain", *TINY_MNIST, "methods.place.max_steps=50", "hydra.run.dir=b") == 0
    changed = capsys.readouterr().err
    for kind in ("classifier", "autoencoder", "flow"):
        assert f"Loaded {kind}" in changed, kind
    assert "No counterfactuals 'place'" in changed


def test_place_runs_on_toy_data_with_the_identity_autoencoder(cli, tmp_path):
    from conftest import TINY

    assert cli("run", "method=place", *TINY, "hydra.run.dir=run") == 0
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics.loc[0, "method"] == "place"
    assert (tmp_path / "run" / "plot.png").exists()
