"""Every config value checked before any work: one line naming the key, exit code 2, nothing
written, driven in-process through ``flowcf.cli.main``."""

import gc
import time

import pytest

from flowcf.checks import DATA, check_config
from flowcf.cli import config_choices, main, sweep_runs
from flowcf.data import DATASETS
from flowcf.errors import UserError

#: A bad command line (after ``flowcf run``) and the one line it must give.
MISTAKES = [
    (["threads=zero"], "threads must be a whole number ≥ 1 or null, got 'zero'"),
    (["data.n_samples=ten"], "data.n_samples must be a whole number ≥ 1, got 'ten'"),
    (["model.train.lr=fast"], "model.train.lr must be a number > 0, got 'fast'"),
    (["model.layers=0"], "model.layers must be a whole number ≥ 1, got 0"),
    (["dat=moons"], "unknown key dat; did you mean data?"),
    (["method.max_step=10"], "unknown key method.max_step; did you mean method.max_steps?"),
    (["methd.lr=3"], "unknown key methd; did you mean method?"),
    (["model.typo=3"], "unknown key model.typo; `flowcf run --cfg job` lists the keys"),
    (["+model.colour=red"], "unknown key model.colour; flow 'realnvp' takes: layers, hidden,"),
    (
        ["+metrics.plausibility_quantil=0.3"],
        "unknown key metrics.plausibility_quantil; did you mean metrics.plausibility_quantile?",
    ),
    (["model.layers=["], "no viable alternative at input '['"),
    (["model.layers=abc"], "model.layers must be a whole number ≥ 1, got 'abc'"),
    (["seed=-1"], "seed must be a whole number ≥ 0, got -1"),
    (["threads=0"], "threads must be a whole number ≥ 1 or null, got 0"),
    (["device=tpu"], "device must be one of: auto, cpu, cuda, cuda:<index>, got 'tpu'"),
    (["resume=maybe"], "resume must be true or false, got 'maybe'"),
    (["checkpoint_every=-1"], "checkpoint_every must be a number ≥ 0, got -1"),
    (["optimized_metric=best"], "optimized_metric must be one of: actionability, coverage,"),
    (["objective=validity"], "objective is now optimized_metric: set optimized_metric=<value>"),
    (["factuals.split=all"], "factuals.split must be one of: train, val, test, got 'all'"),
    (["factuals.limit=0"], "factuals.limit must be a whole number ≥ 1 or null, got 0"),
    (["plots.rows=0"], "plots.rows must be a whole number ≥ 1, got 0"),
    (["data=mnist", "metrics.lpips_net=squeeze"], "metrics.lpips_net must be one of: alex, vgg"),
    (["data.noise=-1"], "data.noise must be a number ≥ 0, got -1"),
    (["data.val=0"], "data.val must be a number in (0, 1), got 0"),
    (["data.val=0.5", "data.test=0.5"], "data.val + data.test (1 / data.folds with folds) must"),
    (["data.folds=1"], "data.folds must be a whole number ≥ 2 or null, got 1"),
    (["data.folds=2", "+data.fold=2"], "data.fold must be in 0..data.folds - 1, got 2"),
    (["data.scaling=robust"], "data.scaling must be one of: standard, minmax, got 'robust'"),
    (["+data.n_sample=10"], "unknown key data.n_sample; did you mean data.n_samples?"),
    (["data=csv"], "data.path is required: set data.path=<value>"),
    (["data=csv", "data.path=/nowhere.csv"], "data.schema is required: set data.schema=<value>"),
    (["data=mnist", "data.size=0"], "data.size must be a whole number ≥ 1, got 0"),
    (["data=mnist", "data.pairs=[[1,1]]"], "data.pairs must be a list of [class, other class]"),
    (["model.train.epochs=0"], "model.train.epochs must be a whole number ≥ 1, got 0"),
    (["model.train.lr=-0.1"], "model.train.lr must be a number > 0, got -0.1"),
    (["model.train.batch_size=-5"], "model.train.batch_size must be a whole number ≥ 1, got -5"),
    (["model.sigma=0"], "model.sigma must be a number > 0, got 0"),
    (["model.base=gaussian"], "model.base must be one of: normal, plugen, got 'gaussian'"),
    (["model=cnf", "model.trace=fast"], "model.trace must be one of: auto, exact, hutchinson"),
    (["model=cnf", "model.objective=fit"], "model.objective must be one of: flow_matching, mle"),
    (["space=pixel", "data=mnist", "model.alpha=0.5"], "model.alpha must be a number in (0, 0.5)"),
    (["space=pixel", "data=mnist", "model=maf"], "model.name must be one of: glow, realnvp"),
    (["classifier.hidden=0"], "classifier.hidden must be a whole number ≥ 1, got 0"),
    (["classifier.train.patience=-1"], "classifier.train.patience must be a whole number ≥ 0"),
    (["+classifier.train.momentum=0.9"], "unknown key classifier.train.momentum; training takes"),
    (["vae.beta=-1"], "vae.beta must be a number ≥ 0, got -1"),
    (["data=mnist", "autoencoder.latent_dim=0"], "autoencoder.latent_dim must be a whole number"),
    (["method.lr=-1"], "method.lr must be a number > 0, got -1"),
    (["method.max_steps=0"], "method.max_steps must be a whole number ≥ 1, got 0"),
    (["+method.patience=-1"], "method.patience must be a whole number ≥ 0, got -1"),
    (["method.unfinished=never"], "method.unfinished must be one of: last, valid, none"),
    (["method.target=-1"], "method.target must be next, flip, a class index ≥ 0 or a class name"),
    (["+method.latent=pca"], "method.latent must be one of: autoencoder, vae or null, got 'pca'"),
    (["factuals.class=1", "method.target=1"], "method.target 1 is factuals.class itself"),
    (["method.losses.decision.eps=-0.1"], "method.losses.decision.eps must be a number ≥ 0"),
    (["method.losses.distance.weight=-1"], "method.losses.distance.weight must be a number ≥ 0"),
    (["method.losses.plausibility.quantile=1.5"], "quantile must be a number in [0, 1], got 1.5"),
    (["method.losses.distance.name=l3"], "method.losses.distance.name must be one of: ce,"),
    (["+method.losses.decision.scale=logit"], "method.losses.decision.scale must be one of:"),
    (["+method.losses.decision.epsilon=0.1"], "did you mean method.losses.decision.eps?"),
    (["method=wachter", "method.lambda_growth=0.5"], "method.lambda_growth must be a number ≥ 1"),
    (["method=dicoflex", "method.num_samples=0"], "method.num_samples must be a whole number ≥ 1"),
    (["method=dicoflex", "method.temperature=0"], "method.temperature must be a number > 0"),
    (["method=dicoflex", "method.mask_rate=2"], "method.mask_rate must be a number in [0, 1]"),
    (["method=dicoflex", "method.p_values=[1,0]"], "method.p_values[1] must be a number > 0"),
    (["method=dicoflex", "method.flow.layers=0"], "method.flow.layers must be a whole number"),
    (["method=dicoflex", "method.flow.name=nvp"], "method.flow.name must be one of: cnf,"),
    (["method=dicoflex", "method.train.epochs=0"], "method.train.epochs must be a whole number"),
    (["method=clarity", "method.losses.decision.members=0"], "decision.members must be a whole"),
    (["experiment=credit_table", "methods.wachter.lr=0"], "methods.wachter.lr must be a number"),
    (["metrics.names=[l2,foo]"], "metrics.names[1] must be one of: actionability, coverage,"),
    (["metrics.plausibility_quantile=1"], "metrics.plausibility_quantile must be a number in"),
    (["-m", "method.lr=0.1,-1"], "method.lr must be a number > 0, got -1"),
    (["-m", "method.max_step=10,20"], "unknown key method.max_step; did you mean method.max_"),
    (["-m", "data=glob(mo*)", "data.noise=-1"], "data.noise must be a number ≥ 0, got -1"),
    (["-m", "--cfg", "job"], "--multirun and --cfg exclude each other; pass one of them"),
]


@pytest.fixture(scope="module", autouse=True)
def hydra_loaded(compose):
    """Hydra's plugins found and the registries imported once, as for a user's command."""
    check_config(compose())


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory):
    """One check before the timed ones, in an empty directory: a worker's first call also
    imports what the checks read (the registries and their modules), which is not their work."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("warm"))
        with pytest.raises(SystemExit):
            main(["run", "seed=-1"])


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """An empty working directory with its own store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWCF_STORE", str(tmp_path / "store"))
    return tmp_path


def run_mistake(args: list[str], capsys) -> tuple[int, str, float]:
    """``flowcf <args>`` in-process: its exit code, stderr and CPU seconds (the work it did;
    the wall-clock time of a loaded machine is not the command's). The garbage earlier tests in
    this worker left is collected first: a full collection of it is not the check's work."""
    gc.collect()
    start = time.process_time()
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return exit_.value.code, capsys.readouterr().err, time.process_time() - start


@pytest.mark.parametrize(("args", "message"), MISTAKES)
def test_a_bad_value_is_one_line_naming_its_key_before_any_work(cwd, capsys, args, message):
    code, err, seconds = run_mistake(["run", *args], capsys)
    assert code == 2, err
    assert err.startswith("flowcf: error: ") and err.strip().count("\n") == 0, err
    assert message in err, err
    assert "Traceback" not in err
    assert list(cwd.iterdir()) == []
    assert seconds < 1, f"{seconds:.2f} s"


def test_an_unknown_stage_is_one_line(cwd, capsys):
    code, err, _ = run_mistake(["trian"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "choose one of: train, explain, evaluate, run, report" in err


def test_an_unknown_choice_lists_the_valid_ones(cwd, capsys):
    code, err, _ = run_mistake(["run", "data=moon"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "unknown data 'moon'" in err and "moons" in err


def test_a_sweep_is_checked_by_each_swept_value():
    runs = sweep_runs(["seed=0,1", "method=ppcef,wachter", "method.lr=interval(0.1,0.3)",
                       "+method.max_steps=int(interval(1,4))", "data=glob(moo*)"])  # fmt: skip
    assert runs == [
        ["seed=0", "method=ppcef", "method.lr=0.2", "+method.max_steps=2", "data=moons"],
        ["seed=1", "method=ppcef", "method.lr=0.2", "+method.max_steps=2", "data=moons"],
        ["seed=0", "method=wachter", "method.lr=0.2", "+method.max_steps=2", "data=moons"],
    ]


def test_every_dataset_has_rules_for_its_keys():
    assert sorted(DATA) == sorted(DATASETS)


def test_every_shipped_config_passes(compose):
    """Every choice of every group, and the presets, as they are in ``conf/``."""
    for group, names in config_choices().items():
        for name in names:
            overrides = [f"{group}={name}"]
            if (group, name) == ("data", "csv"):
                overrides += ["data.path=t.csv", "data.schema=t.yaml"]
            check_config(compose(*overrides))
    with pytest.raises(UserError, match=r"data\.path is required"):
        check_config(compose("data=csv"))


def test_a_config_file_with_the_old_objective_key_names_the_new_one(compose):
    """``objective`` set by a preset of the user's own (not on the command line)."""
    from omegaconf import open_dict

    cfg = compose()
    with open_dict(cfg):
        cfg.objective = "validity"
    with pytest.raises(UserError, match=r"^objective is now optimized_metric: set optimized_"):
        check_config(cfg)
