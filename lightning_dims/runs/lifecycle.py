"""One attempt at a run, from start to record: status, attempt journal, record, W&B and claim on every exit path.

:func:`recorded_run` wraps the work of ``lightning-dims fit`` (fit, test, best-weights test)::

    with recorded_run(session) as outcome:
        trainer.fit(...)
        outcome.evaluations.test = ...

However the block ends (normally, an exception, Ctrl-C/SIGTERM, Lightning's own interrupt), on
global rank 0 the attempt is closed in ``attempts.jsonl``, the results record is written (status
``finished``, ``smoke`` under a smoke-test setting, ``failed`` with the error, or ``interrupted``;
what the callbacks measured is kept) and saved into the W&B run, the W&B run is finished and the run's claim released. Exceptions still propagate.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_dims.records.build import Evaluations, RunFacts, run_record
from lightning_dims.records.contributions import callback_fields
from lightning_dims.records.schema import COMPLETE_STATUSES, smoke_settings
from lightning_dims.records.store import write_record
from lightning_dims.runs.attempts import AttemptJournal
from lightning_dims.runs.claims import Claim
from lightning_dims.runs.wandb_results import save_record_to_wandb
from lightning_dims.runs.wandb_run import finish_wandb, wandb_summary


@dataclass
class RunSession:
    """Everything one attempt needs to leave its trace: the run's facts, folder, record path and claim."""

    facts: RunFacts
    folder: Path
    record_file: Path
    trainer: Any
    model: Any
    datamodule: Any
    claim: Claim | None = None
    program: str = "lightning-dims fit"
    last_seen: float | None = None  # the run folder's last sign of life before this attempt (ends a killed one)


@dataclass
class RunOutcome:
    """What the block reports back: evaluations, and the callbacks' payloads taken before a best-weights test."""

    evaluations: Evaluations = field(default_factory=Evaluations)
    contributions: dict[str, Any] | None = None


def _status_of(error: BaseException | None, trainer: Any, config: dict[str, Any]) -> str:
    if error is None:
        if getattr(trainer, "interrupted", False):
            return "interrupted"
        return "smoke" if smoke_settings(config) else "finished"
    return "interrupted" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "failed"


@contextmanager
def recorded_run(session: RunSession) -> Iterator[RunOutcome]:
    """Run the block as one attempt of ``session``'s run (see the module docstring)."""
    trainer = session.trainer
    is_writer = bool(trainer.is_global_zero)
    journal = AttemptJournal(session.folder)
    attempt = None
    if is_writer:
        attempt = journal.start(session.facts.resumed_from, session.last_seen)
    started = time.perf_counter()
    outcome = RunOutcome()
    caught: BaseException | None = None
    try:
        yield outcome
    except BaseException as error:
        caught = error
        raise
    finally:
        status = _status_of(caught, trainer, session.facts.config)
        try:
            if is_writer:
                journal.end(attempt, status, time.perf_counter() - started)
                contributions = outcome.contributions
                if contributions is None or status not in COMPLETE_STATUSES:  # keep what was measured before the stop
                    contributions = callback_fields(trainer.callbacks)
                error = None
                if caught is not None:
                    error = "".join(traceback.format_exception_only(type(caught), caught)).strip()
                record = run_record(
                    session.facts,
                    contributions,
                    trainer=trainer,
                    model=session.model,
                    datamodule=session.datamodule,
                    status=status,
                    error=error,
                    evaluations=outcome.evaluations,
                    attempts=journal.attempts(),
                    wandb=wandb_summary(trainer.loggers),
                )
                path = write_record(session.record_file, record)
                save_record_to_wandb(trainer.loggers, path)
                print(f"{session.program}: {status}; results record: {path}", file=sys.stderr)
        finally:
            finish_wandb(trainer.loggers)
            if session.claim is not None:
                session.claim.release()
