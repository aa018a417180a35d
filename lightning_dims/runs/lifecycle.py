"""One attempt at a run, from start to record: status, attempt journal, record, W&B and claim on every exit path.

:func:`recorded_run` wraps the work of ``lightning-dims fit`` (fit, test, best-weights test)::

    with recorded_run(session) as outcome:
        trainer.fit(...)
        outcome.evaluations.test = ...

However the block ends (normally, an exception, Ctrl-C/SIGTERM, Lightning's own interrupt), on
global rank 0 the attempt is closed in ``attempts.jsonl``, the results record is written (status
``finished``, ``smoke`` under a smoke-test setting, ``failed`` with the error, or ``interrupted``;
what the callbacks measured is kept) and saved into the W&B run (with ``session.wandb_artifacts``,
also as artifacts: :mod:`lightning_dims.tracking.artifacts`), the W&B run is finished (exit code 0 when
complete, else non-zero) and the run's claim released. Exceptions still propagate. While the block
runs SIGTERM and SIGUSR2 are preemptions (:mod:`lightning_dims.runs.preemption`): the record says
``preempted by <signal>``, the W&B run is marked preempting, and the block raises
:class:`~lightning_dims.runs.preemption.Preempted` (the process exits ``128 + signum``).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lightning_dims.records.build import Evaluations, RunFacts, run_record
from lightning_dims.records.contributions import callback_fields
from lightning_dims.records.schema import COMPLETE_STATUSES, RunStatus, smoke_settings
from lightning_dims.records.store import write_record
from lightning_dims.runs.attempts import AttemptJournal
from lightning_dims.runs.claims import Claim
from lightning_dims.runs.folder import RunFolder
from lightning_dims.runs.preemption import Preempted, PreemptionSignals, preemption_exit_code, preemption_message
from lightning_dims.tracking.artifacts import log_attempt_artifacts
from lightning_dims.tracking.results import save_record_to_wandb
from lightning_dims.tracking.run import finish_wandb, wandb_summary

__all__ = ["RunOutcome", "RunSession", "recorded_run"]


@dataclass
class RunSession:
    """Everything one attempt needs to leave its trace: the run's facts, folder (and record path) and claim."""

    facts: RunFacts
    folder: RunFolder
    trainer: Any
    model: Any
    datamodule: Any
    claim: Claim | None = None
    program: str = "lightning-dims fit"
    last_seen: float | None = None  # the run folder's last sign of life before this attempt (ends a killed one)
    wandb_artifacts: bool = False  # log the attempt's W&B artifacts (lightning_dims.tracking.artifacts)


@dataclass
class RunOutcome:
    """What the block reports back: evaluations, and the callbacks' payloads taken before a best-weights test."""

    evaluations: Evaluations = field(default_factory=Evaluations)
    contributions: dict[str, Any] | None = None


def _status_of(error: BaseException | None, trainer: Any, config: dict[str, Any]) -> RunStatus:
    if error is None:
        if getattr(trainer, "interrupted", False):
            return RunStatus.INTERRUPTED
        return RunStatus.SMOKE if smoke_settings(config) else RunStatus.FINISHED
    return RunStatus.INTERRUPTED if isinstance(error, (KeyboardInterrupt, SystemExit)) else RunStatus.FAILED


@contextmanager
def recorded_run(session: RunSession) -> Iterator[RunOutcome]:
    """Run the block as one attempt of ``session``'s run (see the module docstring)."""
    with PreemptionSignals() as signals:  # installed until the record is written and W&B is finished
        yield from _recorded_attempt(session, signals)


def _recorded_attempt(session: RunSession, signals: PreemptionSignals) -> Iterator[RunOutcome]:
    trainer = session.trainer
    is_writer = bool(trainer.is_global_zero)
    journal = AttemptJournal(session.folder.journal_file)
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
        if signals.preempted and _status_of(error, trainer, session.facts.config) == RunStatus.INTERRUPTED and not isinstance(error, Preempted):
            raise Preempted(signals.signum) from error  # Lightning's SIGTERMException exits 0: W&B would not requeue
        raise
    finally:
        signals.holding = True  # a second signal while recording must not cut the record short
        status = _status_of(caught, trainer, session.facts.config)
        preempted = signals.preempted and status == RunStatus.INTERRUPTED
        try:
            if is_writer:
                journal.end(attempt, status, time.perf_counter() - started)
                contributions = outcome.contributions
                if contributions is None or status not in COMPLETE_STATUSES:  # keep what was measured before the stop
                    contributions = callback_fields(trainer.callbacks)
                error = None
                if preempted:
                    error = preemption_message(signals.signum)
                elif caught is not None:
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
                path = write_record(session.folder.record_file, record)
                save_record_to_wandb(trainer.loggers, path)
                if session.wandb_artifacts:
                    log_attempt_artifacts(
                        trainer.loggers,
                        status=status,
                        record_file=path,
                        checkpoint=session.folder.last_checkpoint,
                        properties=contributions.get("data_properties"),
                        config_hash=session.facts.config_hash,
                    )
                print(f"{session.program}: {status}; results record: {path}", file=sys.stderr)
        finally:
            exit_code = 0 if status in COMPLETE_STATUSES else preemption_exit_code(signals.signum) if preempted else 1
            finish_wandb(trainer.loggers, exit_code=exit_code, preempting=preempted)
            if session.claim is not None:
                session.claim.release()
    if preempted:  # the block returned after Lightning stopped on the signal (trainer.interrupted)
        raise Preempted(signals.signum)
