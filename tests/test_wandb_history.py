"""One W&B history across attempts, with real offline wandb runs (no training): a resumed attempt's ``_step``
starts after every earlier attempt's, unless the server already put an online run past them."""

from __future__ import annotations

from pathlib import Path

import pytest
import wandb
from tests.helpers.wandb_files import settled_records

from lightning_dims.tracking.history import (
    attempt_files,
    continue_history,
    flush_settings,
    history_steps,
    record_payloads,
)


def attempt(folder, rows: int) -> int | None:
    """One offline attempt of run ``abc123`` logging ``rows`` rows after continuing the history; its first step."""
    settings = wandb.Settings(silent=True, **flush_settings())
    run = wandb.init(project="p", id="abc123", dir=str(folder), mode="offline", resume="allow", settings=settings)
    first = continue_history(run)
    for value in range(rows):
        run.log({"loss": float(value)})
    run.finish()
    settled_records(next(Path(run.dir).parent.glob("run-*.wandb")))  # W&B's core may still be writing
    return first


def test_each_offline_attempt_continues_the_steps_of_the_earlier_ones(tmp_path):
    assert attempt(tmp_path, 4) is None  # nothing earlier: wandb's own start at 0
    assert attempt(tmp_path, 3) == 4
    assert attempt(tmp_path, 2) == 7
    files = attempt_files(tmp_path / "wandb", "abc123")
    assert [history_steps(path) for path in files] == [[0, 1, 2, 3], [4, 5, 6], [7, 8]]
    assert flush_settings() == {"x_transaction_log_flush_interval": 2.0}  # the installed wandb flushes on a timer


class OnlineRun:
    """The parts of an online ``wandb.Run`` that :func:`continue_history` reads: its folder, id and step
    (what the server said the synced history holds), and ``log``."""

    def __init__(self, wandb_dir, step: int):
        self.dir, self.id, self.step, self.logged = str(wandb_dir / "run-20991231_000000-abc123" / "files"), "abc123", step, []

    def log(self, data, step=None, commit=None):
        self.logged.append((data, step, commit))


def test_an_online_resume_skips_unsynced_offline_steps_and_keeps_the_servers_when_ahead(tmp_path):
    attempt(tmp_path, 3)  # an offline attempt, not synced
    behind = OnlineRun(tmp_path / "wandb", step=0)
    assert continue_history(behind) == 3 and behind.logged == [({}, 3, False)]
    ahead = OnlineRun(tmp_path / "wandb", step=10)  # the server holds more (synced attempts)
    assert continue_history(ahead) is None and ahead.logged == []


def test_a_torn_run_file_reads_to_its_last_whole_record(tmp_path):
    attempt(tmp_path, 3)
    (path,) = attempt_files(tmp_path / "wandb", "abc123")
    whole = record_payloads(path)
    torn = tmp_path / "torn.wandb"
    torn.write_bytes(path.read_bytes()[:-5])
    assert record_payloads(torn) == whole[:-1]


def test_an_unreadable_earlier_attempt_is_a_warning_not_a_failed_run(tmp_path):
    garbage = tmp_path / "wandb" / "offline-run-20000101_000000-abc123" / "run-abc123.wandb"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"not a W&B run file")
    with pytest.warns(UserWarning, match="could not continue the W&B history of run abc123"):
        assert attempt(tmp_path, 2) is None
