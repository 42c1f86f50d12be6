"""A Session frees its data and models when dropped, as a sweep of many runs in one process
(the basic launcher, Optuna) needs."""

import gc
import weakref

from conftest import TINY

from flowcf.session import Session


def test_dropped_sessions_are_collected_with_their_data_and_models(compose, tmp_path):
    cfg = compose(*TINY, "threads=1", f"paths.store={tmp_path}")
    alive = []
    for run in range(3):  # the first trains, the others load from the store
        session = Session(cfg, tmp_path / f"run{run}")
        cfs = session.counterfactuals("ppcef")  # data, classifier, flow, factuals, setting
        assert session.counterfactuals("ppcef") is cfs  # still cached for the session's life
        assert session.factuals("next") is session.factuals("next")
        parts = (session, session.data, session.parts.classifier, session.parts.flow,
                 session.setting(None))  # fmt: skip
        alive += [weakref.ref(part) for part in (*parts, session.parts.split("train")[0], cfs)]
        del session, cfs, parts
    gc.collect()
    assert [ref() for ref in alive] == [None] * len(alive)
