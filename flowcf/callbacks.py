"""Hydra callbacks: at the end of a multirun, one aggregated report in the sweep directory."""

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

__all__ = ["SweepReport"]

log = logging.getLogger("flowcf")


class SweepReport(Callback):
    """Writes ``report.{csv,md,tex}`` (mean ± std over seeds; beside the ``reference``
    config's figures if any) into the sweep dir when the sweep ends, as ``flowcf report
    <sweep dir>`` would."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from flowcf.errors import UserError
        from flowcf.pipeline import report_directory

        try:
            report_directory(config.hydra.sweep.dir, config.get("reference"))
        except UserError as error:
            log.error("%s", error)
