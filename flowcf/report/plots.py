r"""Pictures of counterfactuals, written as PNG files.

Figures are built on :class:`matplotlib.figure.Figure` directly, never through pyplot's global
state, so plotting works without a display.

Examples:
    >>> import tempfile, torch
    >>> path = Path(tempfile.mkdtemp()) / "cf.png"
    >>> x_train, y_train = torch.randn(100, 2), torch.randint(0, 2, (100,))
    >>> x = torch.randn(4, 2)
    >>> plot_counterfactuals_2d(
    ...     path, x_train=x_train, y_train=y_train,
    ...     log_density=lambda g: -(g - 1).square().sum(-1) / 2,
    ...     predict=lambda g: (g.sum(-1) > 0).long(),
    ...     x=x, x_cf=x + 1, valid=torch.ones(4, dtype=torch.bool), title="demo",
    ... )
    >>> path.exists()
    True
"""

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from flowcf.io import atomic_write

__all__ = [
    "plot_counterfactuals_2d",
    "plot_image_counterfactuals",
    "plot_runs",
    "plot_trajectory",
    "save_figure",
]

GRID_SIZE = 200
MARGIN = 0.1  # of the data range, on each side
DENSITY_RANGE = 12.0  # nats below the maximum shown by the density contours


def _numpy(a: Tensor | np.ndarray) -> np.ndarray:
    return torch.as_tensor(a).detach().cpu().numpy()


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Saves a figure atomically: to a temporary file in the same directory, then renamed.

    Arguments:
        fig: The figure.
        path: The destination; the format follows its suffix (e.g. ``.png``).
    """
    suffix = Path(path).suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=suffix, bbox_inches="tight"))


def plot_counterfactuals_2d(
    path: str | os.PathLike,
    *,
    x_train: Tensor,
    y_train: Tensor,
    log_density: Callable[[Tensor], Tensor],
    predict: Callable[[Tensor], Tensor],
    x: Tensor,
    x_cf: Tensor,
    valid: Tensor,
    title: str,
) -> None:
    r"""Draws 2D factuals, their counterfactuals, the target density and the decision boundary.

    The picture shows filled contours of the target-class log-density (the top
    ``DENSITY_RANGE`` nats), the classifier's decision boundary, the training points coloured by
    class, and an arrow from each factual to its counterfactual, green when valid and red when
    not. Factuals without a counterfactual (NaN rows of ``x_cf``) are drawn without an arrow.

    Arguments:
        path: The PNG file to write (atomically).
        x_train: Training points, shape :math:`(N, 2)`.
        y_train: Training labels, shape :math:`(N,)`.
        log_density: Maps points :math:`(G, 2)` to the target-class log-density :math:`(G,)`.
        predict: Maps points :math:`(G, 2)` to the predicted class :math:`(G,)`.
        x: Factuals, shape :math:`(B, 2)`.
        x_cf: Counterfactuals, shape :math:`(B, 2)`; NaN rows mean none was found.
        valid: Whether each counterfactual gets the target class, shape :math:`(B,)`.
        title: The figure title.
    """
    x_train, y_train, x, x_cf, valid = map(_numpy, (x_train, y_train, x, x_cf, valid))
    found = ~np.isnan(x_cf).any(axis=-1)
    valid = valid.astype(bool) & found

    points = np.concatenate([x_train, x, x_cf[found]])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = MARGIN * np.maximum(high - low, 1e-3)
    gx, gy = np.meshgrid(*np.linspace(low - pad, high + pad, GRID_SIZE, axis=-1))
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=-1), dtype=torch.float32)
    with torch.no_grad():
        logp = _numpy(log_density(grid)).astype(np.float64).reshape(gx.shape)
        pred = _numpy(predict(grid)).reshape(gx.shape)

    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.add_subplot()

    top = np.nanmax(np.where(np.isfinite(logp), logp, np.nan))
    floor = top - DENSITY_RANGE
    logp = np.clip(np.nan_to_num(logp, nan=floor, neginf=floor, posinf=top), floor, top)
    filled = ax.contourf(gx, gy, logp, levels=np.linspace(floor, top, 13), cmap="Greys", alpha=0.6)
    fig.colorbar(filled, ax=ax, label="target-class log-density (nats)")

    classes = np.unique(pred)
    if len(classes) > 1:
        ax.contour(gx, gy, pred, levels=(classes[:-1] + classes[1:]) / 2, colors="black")

    ax.scatter(*x_train.T, c=y_train, cmap="tab10", vmin=0, vmax=9, s=4, alpha=0.5)

    handles = [
        Line2D([], [], color="black", label="decision boundary"),
        ax.scatter(*x.T, color="black", s=16, zorder=3, label="factual"),
    ]
    for mask, color, label in (
        (valid, "tab:green", "valid counterfactual"),
        (found & ~valid, "tab:red", "invalid counterfactual"),
    ):
        if mask.any():
            start, delta = x[mask], x_cf[mask] - x[mask]
            ax.quiver(
                *start.T,
                *delta.T,
                color=color,
                angles="xy",
                scale_units="xy",
                scale=1,
                width=0.004,
                zorder=4,
            )
            handles.append(
                ax.scatter(
                    *x_cf[mask].T,
                    color=color,
                    marker="X",
                    s=40,
                    edgecolors="black",
                    linewidths=0.5,
                    zorder=5,
                    label=label,
                )
            )

    ax.legend(handles=handles, loc="best", fontsize="small")
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    ax.set(xlim=(gx[0, 0], gx[0, -1]), ylim=(gy[0, 0], gy[-1, 0]))
    save_figure(fig, path)


def _show_image(ax, image: np.ndarray, title: str, **style) -> None:
    """Draws a (C, H, W) image without ticks; grayscale when C = 1."""
    image = np.moveaxis(image, 0, -1)
    ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image.clip(0, 1), **style)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def plot_image_counterfactuals(path: str | os.PathLike, results: dict, index: list[int]) -> None:
    """A grid: one row per factual, the factual then, per method, its counterfactual and the
    difference map (red: ink added, blue: ink removed).

    Arguments:
        path: The PNG file to write (atomically).
        results: Method name → :class:`~flowcf.methods.Counterfactuals` on the same factuals.
        index: The factuals to show, one per row.
    """
    first = next(iter(results.values()))
    columns = 1 + 2 * len(results)
    fig = Figure(figsize=(1.3 * columns, 1.4 * len(index)))
    axes = fig.subplots(len(index), columns, squeeze=False)
    gray = {"cmap": "gray", "vmin": 0, "vmax": 1}
    for row, i in enumerate(index):
        x = _numpy(first.x[i])
        _show_image(axes[row, 0], x, "factual" if row == 0 else "", **gray)
        axes[row, 0].set_ylabel(f"{int(first.y[i])} → {int(first.y_target[i])}", fontsize=8)
        for m, (name, cfs) in enumerate(results.items()):
            x_cf = np.nan_to_num(_numpy(cfs.x_cf[i]))
            _show_image(axes[row, 1 + 2 * m], x_cf, name if row == 0 else "", **gray)
            diff = (x_cf - x).mean(axis=0, keepdims=True)
            _show_image(axes[row, 2 + 2 * m], diff, "difference" if row == 0 else "",
                        cmap="bwr", vmin=-1, vmax=1)  # fmt: skip
    fig.tight_layout()
    save_figure(fig, path)


def plot_trajectory(
    path: str | os.PathLike, frames: Tensor, steps: Tensor, proba: Tensor, labels: list[str]
) -> None:
    """Per factual, a strip of its candidates along the search, like Fig. 2 of PLACE (2025).

    Arguments:
        path: The PNG file to write (atomically).
        frames: Candidates, (R, F, C, H, W): R factuals, F steps each.
        steps: The step of each frame, (R, F).
        proba: The classifier's probability of the factual's class for each frame, (R, F).
        labels: A row label per factual, e.g. ``"0 → 8"``.
    """
    rows, columns = frames.shape[:2]
    fig = Figure(figsize=(1.2 * columns, 1.45 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for r in range(rows):
        axes[r, 0].set_ylabel(labels[r], fontsize=8)
        for f in range(columns):
            title = f"step {int(steps[r, f])}\np={float(proba[r, f]):.2f}"
            _show_image(axes[r, f], _numpy(frames[r, f]), title, cmap="gray", vmin=0, vmax=1)
    fig.suptitle("search trajectory (p: probability of the factual's class)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_runs(path: str | os.PathLike, runs, x: str = "l2", y: str = "log_density") -> None:
    """Methods compared: metric ``y`` against ``x``, one point per run (a pandas frame with a
    ``method`` column and one row per run and method)."""
    fig = Figure(figsize=(5, 4), layout="constrained")
    ax = fig.add_subplot()
    for method, group in runs.groupby("method"):
        ax.scatter(group[x], group[y], label=method, alpha=0.8)
    ax.set(xlabel=x, ylabel=y, title=f"{y} against {x}, one point per run")
    ax.legend()
    save_figure(fig, path)
