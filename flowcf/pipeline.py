"""The stages as plain functions of a :class:`~flowcf.session.Session`: train, explain,
evaluate, run and report. Each writes into the run directory; nothing half-written survives."""

import json
import logging
from pathlib import Path

import pandas as pd
import torch
import yaml
from torch import Tensor

from flowcf.batching import batched
from flowcf.config import plain
from flowcf.counterfactuals import Counterfactuals
from flowcf.density import class_log_prob
from flowcf.errors import UserError
from flowcf.io import atomic_write, atomic_write_text
from flowcf.metrics import METRICS, compute_metrics
from flowcf.networks.classifiers import predict_proba
from flowcf.report.plots import (
    plot_counterfactuals_2d,
    plot_image_counterfactuals,
    plot_runs,
    plot_trajectory,
)
from flowcf.report.reference import write_reference_tables
from flowcf.report.tables import aggregate, arrow_headers, best_cells, views, write_table
from flowcf.rundir import CONFIG, FAILED, resolved_config
from flowcf.session import Session

__all__ = ["STAGES", "evaluate", "explain", "report", "report_directory", "run", "train"]

log = logging.getLogger(__name__)

RUN_KEYS = ["data", "model", "classifier", "method"]


def save_config(session: Session) -> None:
    """The resolved config with the package versions, as ``config.yaml`` in the run dir."""
    text = yaml.safe_dump(resolved_config(session.cfg), sort_keys=False, allow_unicode=True)
    atomic_write_text(session.run_dir / CONFIG, text)


def train(session: Session) -> None:
    """Trains (or loads) the classifier, the autoencoders the methods use, and the flow; writes
    their test figures to ``train.json`` and prints them."""
    save_config(session)
    session.check_files()
    _ = session.parts.classifier, session.parts.flow
    if any(method.get("latent") == "vae" for method in session.methods.values()):
        _ = session.parts.vae
    text = json.dumps(session.parts.summary, indent=2)
    atomic_write_text(session.run_dir / "train.json", text)
    print(text)


def counterfactual_frame(session: Session, name: str) -> pd.DataFrame:
    """Factual and counterfactual side by side, one row per counterfactual (``rank`` 0 is the
    best; methods such as DiCoFlex give several), in the data's own units and category names
    (vector data), with the features that changed listed in ``changed``."""
    cfs, data = session.counterfactuals(name), session.data
    ranked = cfs.ranked
    keep = ranked.flatten(2).isfinite().all(dim=2)
    keep[:, 0] = True  # every factual has a row, with or without a counterfactual
    factual, rank = torch.nonzero(keep, as_tuple=True)
    x_cf = ranked[factual, rank]
    predicted = batched(session.parts.classifier, x_cf.nan_to_num()).argmax(dim=1)
    found = x_cf.flatten(1).isfinite().all(dim=1)
    frame = pd.DataFrame({
        "method": name,
        "factual": factual.cpu(),
        "rank": rank.cpu(),
        "factual_class": cfs.y[factual].cpu(),
        "target": cfs.y_target[factual].cpu(),
        "counterfactual_class": predicted.cpu(),
        "found": found.cpu(),
        "valid": (found & (predicted == cfs.y_target[factual])).cpu(),
        "steps": cfs.steps[factual].cpu(),
    })  # fmt: skip
    if not data.feature_names:
        return frame
    before = data.frame(cfs.x[factual])
    after = data.frame(x_cf.nan_to_num()).where(frame["found"])
    changed = before.ne(after) & frame["found"].to_numpy()[:, None]
    frame["changed"] = [";".join(before.columns[row]) for row in changed.to_numpy()]
    return pd.concat([frame, before, after.add_prefix("cf_")], axis=1)


def explain(session: Session) -> None:
    """Explains the factuals with every method of the run; writes ``counterfactuals.pt``
    (tensors, by method) and ``counterfactuals.csv``."""
    save_config(session)
    session.check_files()
    results = {name: session.counterfactuals(name) for name in session.methods}
    for name, cfs in results.items():
        log.info("%s: %d factuals in %.2f s (+ %.2f s fitting its own models)", name,
                 len(cfs.x), cfs.seconds, cfs.fit_seconds)  # fmt: skip
    payload = {name: cfs.to_dict() for name, cfs in results.items()}
    atomic_write(session.run_dir / "counterfactuals.pt", lambda tmp: torch.save(payload, tmp))
    frame = pd.concat([counterfactual_frame(session, name) for name in results])
    atomic_write_text(session.run_dir / "counterfactuals.csv", frame.to_csv(index=False))
    log.info("Counterfactuals: %s", session.run_dir / "counterfactuals.csv")


def evaluate(session: Session) -> pd.DataFrame:
    """Scores every method's counterfactuals with ``metrics.names`` and ``optimized_metric``;
    writes ``metrics.csv`` (one row per method), ``table.md``/``.tex`` and pictures."""
    explain(session)
    cfg, names = session.cfg, list(session.cfg.metrics.names)
    if cfg.optimized_metric and cfg.optimized_metric not in names:
        names.append(cfg.optimized_metric)  # what an Optuna preset maximizes, listed or not
    rows = [
        {"data": cfg.data.name, "model": cfg.model.name, "classifier": cfg.classifier.name,
         "method": name, "seed": cfg.seed,
         **compute_metrics(names, session.evaluation(name))}
        for name in session.methods
    ]  # fmt: skip
    frame = pd.DataFrame(rows)
    atomic_write_text(session.run_dir / "metrics.csv", frame.to_csv(index=False))
    directions = {n: METRICS.get(n).higher_is_better for n in names if n in frame}
    table = arrow_headers(frame.drop(columns=["seed"]), directions)
    bold = arrow_headers(best_cells(frame[list(directions)], directions), directions)
    write_table(table, session.run_dir, "table", bold=bold)
    log.info(
        "Metrics (%s):\n%s",
        session.run_dir / "metrics.csv",
        table.to_markdown(index=False, floatfmt=".4g"),
    )
    if session.data.shape == (2,):
        for name in session.methods:
            _plot_2d(session, name)
    elif len(session.data.shape) == 3:
        results = {name: session.counterfactuals(name) for name in session.methods}
        for (a, b), index in _pairs(next(iter(results.values())), session.cfg.plots.rows).items():
            path = session.run_dir / f"counterfactuals_{a}to{b}.png"
            plot_image_counterfactuals(path, results, index.tolist())
            log.info("Pictures: %s", path)
        for name in session.methods.keys() & set(session.cfg.plots.trajectory):
            _plot_trajectory(session, name)
    return frame


def _pairs(cfs: Counterfactuals, limit: int) -> dict[tuple[int, int], Tensor]:
    """The first ``limit`` factuals of each (class, target) pair, by pair."""
    pairs = torch.stack([cfs.y, cfs.y_target], dim=1)
    return {
        tuple(pair.tolist()): torch.nonzero((pairs == pair).all(dim=1)).squeeze(1)[:limit]
        for pair in pairs.unique(dim=0)
    }


def _plot_trajectory(session: Session, name: str) -> None:
    """Re-runs method ``name`` on the first ``plots.per_pair`` factuals of each (class, target)
    pair, recording every step, and draws ``plots.frames`` evenly spaced candidates per factual
    up to where its search stopped (PLACE's Fig. 2)."""
    cfs, options = session.counterfactuals(name), session.cfg.plots
    index = torch.cat(list(_pairs(cfs, options.per_pair).values()))
    recorded = []
    traced = session.explainer(name).explain(
        cfs.x[index], cfs.y[index], cfs.y_target[index],
        on_step=lambda _, x_cf: recorded.append(x_cf),
    )  # fmt: skip
    path = torch.stack(recorded, dim=1)  # (R, steps, C, H, W)
    fraction = torch.linspace(0, 1, options.frames, device=path.device)
    steps = (fraction[None] * traced.steps[:, None].clamp(max=len(recorded) - 1)).round().long()
    rows = torch.arange(len(index), device=path.device)
    frames = path[rows[:, None], steps]
    with torch.no_grad():
        proba = predict_proba(session.parts.classifier, frames.flatten(0, 1))
    proba = proba.unflatten(0, steps.shape)
    original = proba[rows, :, cfs.y[index]]  # (R, frames): the factual's class
    out = session.run_dir / f"trajectory_{name}.png"
    pairs = torch.stack([cfs.y[index], cfs.y_target[index]], dim=1).tolist()
    labels = [f"{a} → {b}" for a, b in pairs]
    plot_trajectory(out, frames.cpu(), steps.cpu(), original.cpu(), labels)
    log.info("Trajectory of %s: %s", name, out)


def _plot_2d(session: Session, name: str) -> None:
    cfs, data, device = session.counterfactuals(name), session.data, session.device
    target = int(cfs.y_target.mode().values)

    def log_density(grid: torch.Tensor) -> torch.Tensor:
        z = session.parts.encode(grid.to(device))
        y = torch.full((len(z),), target, device=device)
        return batched(lambda i: class_log_prob(session.parts.flow, z[i], y[i], data.num_classes),
                       torch.arange(len(z), device=device)).cpu()  # fmt: skip

    def predict(grid: torch.Tensor) -> torch.Tensor:
        return batched(session.parts.classifier, grid.to(device)).argmax(dim=1).cpu()

    single = len(session.methods) == 1
    path = session.run_dir / ("plot.png" if single else f"plot_{name}.png")
    plot_counterfactuals_2d(
        path,
        x_train=data.x_train,
        y_train=data.y_train,
        log_density=log_density,
        predict=predict,
        x=cfs.x.cpu(),
        x_cf=cfs.x_cf.cpu(),
        valid=session.evaluation(name).valid.cpu(),
        title=f"{name} on {data.name}: class → {target}",
    )
    log.info("Plot: %s", path)


def run(session: Session) -> pd.DataFrame:
    """Train, explain and evaluate in one run directory. With ``data.folds=K``, once per fold
    (in ``fold<i>/``), then ``folds.csv`` with every fold's metrics and ``table.*`` summarising
    them (:func:`summarize`; not ``metrics.csv``, so ``flowcf report`` counts each fold once);
    ``+data.fold=i`` runs fold i alone."""
    folds = session.cfg.data.get("folds")
    if not folds or session.cfg.data.get("fold") is not None:
        train(session)
        return evaluate(session)
    save_config(session)
    frame = pd.concat([run(session.fold(i)).assign(fold=i) for i in range(folds)])
    atomic_write_text(session.run_dir / "folds.csv", frame.to_csv(index=False))
    summarize(frame, session.run_dir, "table", f"{folds} folds", session.cfg.get("reference"))
    return frame


def summarize(
    runs: pd.DataFrame, directory: str | Path, stem: str, what: str, reference=None
) -> pd.DataFrame:
    """One row per data, model, classifier and method with the number of runs and every
    metric's mean, std and number of runs with a value (:func:`aggregate`): written as
    ``<stem>.csv``, and formatted (:func:`views`) as ``<stem>.md`` and ``.tex`` and logged.
    With a ``reference`` config, also flowcf's figures beside the reference's, one table per
    metric (:func:`~flowcf.report.reference.write_reference_tables`)."""
    metrics = [c for c in runs.columns if c in METRICS]
    summary = aggregate(runs, RUN_KEYS, metrics)
    view, bold = views(summary, {m: METRICS.get(m).higher_is_better for m in metrics})
    write_table(summary, directory, stem, view=view, bold=bold)
    log.info("%s (%s):\n%s", what, Path(directory) / f"{stem}.md", view.to_markdown(index=False))
    if reference:
        reference = plain(reference)
        paths = write_reference_tables(summary, directory, reference)
        log.info("Beside %s: %s", reference["file"], ", ".join(p.name for p in paths))
    return summary


def report_directory(directory: str | Path, reference=None) -> pd.DataFrame:
    """Collects ``metrics.csv`` from every run under ``directory`` into one table over seeds
    (:func:`summarize`, beside the ``reference`` config's figures if given); writes
    ``report.csv``, ``.md``, ``.tex`` and ``report.png`` (log density against L2, one point per
    run) there. Runs that failed (a ``failed.txt`` in their dir) are counted and left out, with
    any results an earlier run left in their dir."""
    if directory is None or not Path(directory).is_dir():
        raise UserError(
            f"flowcf report needs a directory of runs: flowcf report <dir> (got {directory!r})"
        )
    failed = sorted(Path(directory).rglob(FAILED))
    for file in failed:
        log.warning("Failed run %s: %s", file.parent, file.read_text().strip())
    failed_dirs = {file.parent for file in failed}
    files = [
        file for file in sorted(Path(directory).rglob("metrics.csv"))
        if failed_dirs.isdisjoint(file.parents)
    ]  # fmt: skip
    if not files:
        raise UserError(
            f"no metrics.csv under {directory}; run `flowcf run` or `flowcf evaluate` there first"
        )
    runs = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    what = f"Report of {len(files)} runs, {len(failed)} failed"
    if {"l2", "log_density"} <= set(runs.columns):
        plot_runs(Path(directory) / "report.png", runs)
    return summarize(runs, directory, "report", what, reference)


def report(session: Session) -> pd.DataFrame:
    """``flowcf report <dir>``: :func:`report_directory` of ``paths.report``."""
    return report_directory(session.cfg.paths.report, session.cfg.get("reference"))


STAGES = {"train": train, "explain": explain, "evaluate": evaluate, "run": run, "report": report}
