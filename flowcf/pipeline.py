"""The stages as plain functions of a config: train, explain, evaluate, run, report.

A :class:`Session` builds each part on first use: data, then the classifier and the flow through
the artifact store (loaded when ``train`` already made them for the same settings, else trained
and saved), then the counterfactuals (also stored, so ``evaluate`` finds what ``explain`` made).
"""

import logging
import platform
import sys
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.functional import cross_entropy

from flowcf.data import DATASETS, Dataset
from flowcf.density import class_log_prob
from flowcf.environment import resolve_device, seed_everything, set_threads
from flowcf.errors import UserError
from flowcf.flows import FLOWS
from flowcf.io import atomic_write, atomic_write_text
from flowcf.losses import Models
from flowcf.methods import METHODS, Counterfactuals, targets_for
from flowcf.metrics import METRICS, EvaluationContext, compute_metrics
from flowcf.models import CLASSIFIERS
from flowcf.report.plots import plot_counterfactuals_2d
from flowcf.report.tables import aggregate, arrow_headers, write_table
from flowcf.store import Store
from flowcf.training import fit

__all__ = ["STAGES", "Session", "evaluate", "explain", "report", "run", "train"]

log = logging.getLogger(__name__)

RUN_KEYS = ["data", "model", "classifier", "method", "seed"]


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


class Session:
    """Everything one run needs, each part built (or loaded) on first use.

    Arguments:
        cfg: The composed config.
        run_dir: The run's output directory.
    """

    def __init__(self, cfg: DictConfig, run_dir: str | Path):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        set_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.store = Store(cfg.paths.store)
        self.progress = bool(cfg.progress) and sys.stderr.isatty()
        seed_everything(cfg.seed)

    def spec(self, *groups: str) -> dict[str, Any]:
        """The settings that define an artifact: the named config groups and the seed."""
        return {group: _plain(self.cfg[group]) for group in (*groups, "seed")}

    @staticmethod
    def options(node: DictConfig, *drop: str) -> dict[str, Any]:
        """A config group as keyword arguments, without its ``name`` and the ``drop`` keys."""
        return {k: v for k, v in _plain(node).items() if k not in {"name", *drop}}

    @cached_property
    def data(self) -> Dataset:
        data = DATASETS.build(self.cfg.data.name, _plain(self.cfg.data), self.cfg.seed)
        log.info(
            "Data %s: %d train, %d val, %d test points, %d features, %d classes",
            data.name,
            len(data.x_train),
            len(data.x_val),
            len(data.x_test),
            data.dim,
            data.num_classes,
        )
        return data

    def _train(self, kind: str, group: str, build, loss) -> torch.nn.Module:
        """The model of config ``group``, loaded from the store or trained and saved."""
        cfg, data = self.cfg[group], self.data

        def create():
            seed_everything(self.cfg.seed)
            model = build().to(self.device)
            split = {
                s: (
                    getattr(data, f"x_{s}").to(self.device),
                    getattr(data, f"y_{s}").to(self.device),
                )
                for s in ("train", "val")
            }
            metrics = fit(
                model,
                loss,
                split["train"],
                split["val"],
                **_plain(cfg.train),
                progress=self.progress,
                desc=f"train {kind}",
            )
            return {"state_dict": model.state_dict()}, metrics

        payload = self.store.fetch(kind, cfg.name, self.spec("data", group), create)
        model = build()
        try:
            model.load_state_dict(payload["state_dict"])
        except (KeyError, RuntimeError) as error:
            path = self.store.path(kind, cfg.name, self.spec("data", group))
            raise UserError(
                f"{path} does not fit {kind} '{cfg.name}' as configured now "
                f"({type(error).__name__}); delete it to retrain"
            ) from None
        return model.to(self.device).eval().requires_grad_(False)

    @cached_property
    def classifier(self) -> torch.nn.Module:
        model = self._train(
            "classifier",
            "classifier",
            lambda: CLASSIFIERS.build(
                self.cfg.classifier.name,
                self.data.shape,
                self.data.num_classes,
                **self.options(self.cfg.classifier, "train"),
            ),
            lambda model, x, y: cross_entropy(model(x), y),
        )
        accuracy = self._accuracy(model)
        log.info("Classifier %s: test accuracy %.4f", self.cfg.classifier.name, accuracy)
        return model

    @cached_property
    def flow(self) -> torch.nn.Module:
        classes = self.data.num_classes
        model = self._train(
            "flow",
            "model",
            lambda: FLOWS.build(
                self.cfg.model.name,
                self.data.dim,
                classes,
                **self.options(self.cfg.model, "train"),
            ),
            lambda model, x, y: -class_log_prob(model, x, y, classes).mean(),
        )
        with torch.no_grad():
            x, y = self.data.x_test.to(self.device), self.data.y_test.to(self.device)
            nll = -class_log_prob(model, x, y, classes).mean().item()
        log.info("Flow %s: test NLL %.4f nats", self.cfg.model.name, nll)
        return model

    def _accuracy(self, model: torch.nn.Module) -> float:
        with torch.no_grad():
            predicted = model(self.data.x_test.to(self.device)).argmax(dim=1).cpu()
        return (predicted == self.data.y_test).float().mean().item()

    @cached_property
    def factuals(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The factuals ``x``, their predicted classes ``y`` and the targets ``y_target``."""
        cfg = self.cfg.factuals
        x = getattr(self.data, f"x_{cfg.split}", None)
        if x is None:
            raise UserError(f"factuals.split must be train, val or test, got '{cfg.split}'")
        x = x.to(self.device)
        with torch.no_grad():
            y = self.classifier(x).argmax(dim=1)
        keep = torch.ones_like(y, dtype=torch.bool) if cfg["class"] is None else y == cfg["class"]
        y_target = targets_for(y, self.cfg.method.target, self.data.num_classes)
        keep &= y_target != y
        x, y, y_target = x[keep][: cfg.limit], y[keep][: cfg.limit], y_target[keep][: cfg.limit]
        if len(x) == 0:
            raise UserError(
                f"no factuals: the classifier assigns no {cfg.split} point to class "
                f"{cfg['class']} with another target; change factuals.class"
            )
        return x, y, y_target

    @cached_property
    def models(self) -> Models:
        return Models(
            self.classifier,
            self.flow,
            self.data.x_train.to(self.device),
            self.data.y_train.to(self.device),
            self.data.num_classes,
        )

    @cached_property
    def counterfactuals(self) -> Counterfactuals:
        method = self.cfg.method

        def create():
            seed_everything(self.cfg.seed)
            explainer = METHODS.build(
                method.name, self.models, progress=self.progress, **self.options(method, "target")
            )
            cfs = explainer.explain(*self.factuals)
            return cfs.to_dict(), {"seconds": cfs.seconds, "factuals": len(cfs.x)}

        spec = self.spec("data", "classifier", "model", "method", "factuals")
        payload = self.store.fetch(
            "counterfactuals", method.name, spec, create, "counterfactuals.pt"
        )
        cfs = Counterfactuals.from_dict(payload)
        return Counterfactuals(
            **{k: v.to(self.device) if torch.is_tensor(v) else v for k, v in vars(cfs).items()}
        )

    def save_config(self) -> None:
        """The resolved config with the package versions, as ``config.yaml`` in the run dir."""
        resolved = _plain(self.cfg)
        resolved["versions"] = {
            "flowcf": version("flowcf"),
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        }
        atomic_write_text(self.run_dir / "config.yaml", OmegaConf.to_yaml(resolved))

    def counterfactual_frame(self) -> pd.DataFrame:
        """Factual and counterfactual rows side by side, in the data's original units."""
        cfs, names = self.counterfactuals, self.data.feature_names
        with torch.no_grad():
            predicted = self.classifier(cfs.x_cf.nan_to_num()).argmax(dim=1)
        frame = pd.DataFrame(
            {
                "factual_class": cfs.y.cpu(),
                "target": cfs.y_target.cpu(),
                "counterfactual_class": predicted.cpu(),
                "found": cfs.found.cpu(),
                "valid": (cfs.found & (predicted == cfs.y_target)).cpu(),
                "steps": cfs.steps.cpu(),
            }
        )
        for prefix, x in (("", cfs.x), ("cf_", cfs.x_cf)):
            raw = self.data.to_raw(x.cpu()).numpy()
            for j, name in enumerate(names):
                frame[prefix + name] = raw[:, j]
        return frame

    def evaluation(self) -> EvaluationContext:
        return EvaluationContext(
            self.counterfactuals,
            self.classifier,
            self.flow,
            self.models.x_train,
            self.models.y_train,
            self.data.num_classes,
            self.options(self.cfg.metrics, "names"),
        )


def train(session: Session) -> None:
    """Trains (or loads) the classifier and the flow for the configured data."""
    session.save_config()
    _ = session.classifier, session.flow


def explain(session: Session) -> None:
    """Explains the factuals; writes ``counterfactuals.pt`` and ``counterfactuals.csv``."""
    session.save_config()
    cfs = session.counterfactuals
    atomic_write(
        session.run_dir / "counterfactuals.pt", lambda tmp: torch.save(cfs.to_dict(), tmp)
    )
    atomic_write_text(
        session.run_dir / "counterfactuals.csv", session.counterfactual_frame().to_csv(index=False)
    )
    log.info(
        "Explained %d factuals with %s in %.2f s; counterfactuals in %s",
        len(cfs.x),
        session.cfg.method.name,
        cfs.seconds,
        session.run_dir,
    )


def evaluate(session: Session) -> pd.DataFrame:
    """Scores the counterfactuals; writes ``metrics.csv``, ``table.md`` and ``plot.png``."""
    explain(session)
    cfg = session.cfg
    names = list(cfg.metrics.names)
    values = compute_metrics(names, session.evaluation())
    row = {
        "data": cfg.data.name,
        "model": cfg.model.name,
        "classifier": cfg.classifier.name,
        "method": cfg.method.name,
        "seed": cfg.seed,
        **values,
    }
    frame = pd.DataFrame([row])
    atomic_write_text(session.run_dir / "metrics.csv", frame.to_csv(index=False))
    table = arrow_headers(
        frame.drop(columns=["seed"]), {n: METRICS.get(n).higher_is_better for n in names}
    )
    markdown = table.to_markdown(index=False, floatfmt=".4g")
    atomic_write_text(session.run_dir / "table.md", markdown + "\n")
    log.info("Metrics (%s):\n%s", session.run_dir / "metrics.csv", markdown)
    if session.data.dim == 2:
        _plot(session)
    return frame


def _plot(session: Session) -> None:
    cfs, data, device = session.counterfactuals, session.data, session.device
    target = int(cfs.y_target.mode().values)
    targets = torch.tensor([target], device=device)

    def log_density(grid: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            grid = grid.to(device)
            return class_log_prob(
                session.flow, grid, targets.expand(len(grid)), data.num_classes
            ).cpu()

    def predict(grid: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return session.classifier(grid.to(device)).argmax(dim=1).cpu()

    path = session.run_dir / "plot.png"
    valid = session.evaluation().valid
    plot_counterfactuals_2d(
        path,
        x_train=data.x_train,
        y_train=data.y_train,
        log_density=log_density,
        predict=predict,
        x=cfs.x.cpu(),
        x_cf=cfs.x_cf.cpu(),
        valid=valid.cpu(),
        title=f"{session.cfg.method.name} on {data.name}: class → {target}",
    )
    log.info("Plot: %s", path)


def run(session: Session) -> pd.DataFrame:
    """Train, explain and evaluate in one run directory."""
    train(session)
    return evaluate(session)


def report(session: Session) -> pd.DataFrame:
    """Collects ``metrics.csv`` from every run under ``paths.report`` into one table,
    mean ± std over seeds; writes ``report.csv``, ``report.md`` and ``report.tex`` there."""
    directory = session.cfg.paths.report
    if directory is None or not Path(directory).is_dir():
        raise UserError(
            f"flowcf report needs a directory of runs: flowcf report <dir> (got {directory!r})"
        )
    files = sorted(Path(directory).rglob("metrics.csv"))
    if not files:
        raise UserError(
            f"no metrics.csv under {directory}; run `flowcf run` or `flowcf evaluate` there first"
        )
    runs = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    metrics = [c for c in runs.columns if c in METRICS]
    table = arrow_headers(
        aggregate(runs, RUN_KEYS[:-1], metrics),
        {m: METRICS.get(m).higher_is_better for m in metrics},
    )
    write_table(table, directory, "report")
    log.info(
        "Report of %d runs (%s):\n%s",
        len(files),
        Path(directory) / "report.md",
        table.to_markdown(index=False),
    )
    return table


STAGES = {"train": train, "explain": explain, "evaluate": evaluate, "run": run, "report": report}
