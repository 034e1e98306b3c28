"""Pause the flow while annotators work through their queues.

The run shows as Paused in the Prefect UI. It resumes by itself once every queued human task is
answered or `label.human.wait_s` has passed; pressing Resume in the UI goes on at once with the
labels present."""
from __future__ import annotations

import threading
import time

from prefect import get_run_logger, pause_flow_run, resume_flow_run
from prefect.context import get_run_context
from prefect.exceptions import FlowPauseTimeout

from prefpipe.annotate.human_queue import pending_tasks
from prefpipe.store import Store


def wait_for_human_labels(store: Store, wait_s: float, poll_s: float = 5.0) -> int:
    """Block up to `wait_s` for pending human tasks; returns how many are still pending."""
    logger = get_run_logger()
    pending = pending_tasks(store)
    if pending == 0 or wait_s <= 0:
        return pending
    flow_run_id = get_run_context().flow_run.id
    stop = threading.Event()

    def resume_when_done() -> None:
        deadline = time.monotonic() + wait_s
        while not stop.wait(poll_s):
            left = pending_tasks(store)
            if left == 0 or time.monotonic() >= deadline:
                logger.info("resuming: %d human tasks pending", left)
                try:
                    resume_flow_run(flow_run_id)
                except Exception as err:  # already resumed from the UI
                    logger.info("resume: %s", err)
                return

    logger.info("pausing for %d pending human tasks (up to %.0fs; Resume in the UI to go on now)",
                pending, wait_s)
    watcher = threading.Thread(target=resume_when_done, daemon=True)
    watcher.start()
    try:
        pause_flow_run(timeout=int(wait_s + 10 * poll_s) + 1, poll_interval=max(1, int(poll_s)))
    except FlowPauseTimeout:
        logger.warning("pause timed out; going on with the human labels present")
    finally:
        stop.set()
    return pending_tasks(store)
