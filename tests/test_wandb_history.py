"""One W&B history across offline attempts, with real offline wandb runs (no training): a resumed offline
attempt's ``_step`` starts after every earlier attempt's, and an online run is left to the server."""

from __future__ import annotations

from types import SimpleNamespace

import wandb

from lightning_dims.runs.wandb_history import (
    attempt_files,
    continue_offline_history,
    flush_settings,
    history_steps,
    record_payloads,
)


def attempt(folder, rows: int) -> int | None:
    """One offline attempt of run ``abc123`` logging ``rows`` rows after continuing the history; its first step."""
    settings = wandb.Settings(silent=True, **flush_settings())
    run = wandb.init(project="p", id="abc123", dir=str(folder), mode="offline", resume="allow", settings=settings)
    first = continue_offline_history(run)
    for value in range(rows):
        run.log({"loss": float(value)})
    run.finish()
    return first


def test_each_offline_attempt_continues_the_steps_of_the_earlier_ones(tmp_path):
    assert attempt(tmp_path, 4) is None  # nothing earlier: wandb's own start at 0
    assert attempt(tmp_path, 3) == 4
    assert attempt(tmp_path, 2) == 7
    files = attempt_files(tmp_path / "wandb", "abc123")
    assert [history_steps(path) for path in files] == [[0, 1, 2, 3], [4, 5, 6], [7, 8]]
    assert flush_settings() == {"x_transaction_log_flush_interval": 2.0}  # the installed wandb flushes on a timer


def test_an_online_run_is_left_to_the_server_and_a_torn_file_reads_to_its_last_whole_record(tmp_path):
    online = SimpleNamespace(settings=SimpleNamespace(_offline=False, mode="online"), dir=str(tmp_path), id="x", step=0)
    assert continue_offline_history(online) is None
    attempt(tmp_path, 3)
    (path,) = attempt_files(tmp_path / "wandb", "abc123")
    whole = record_payloads(path)
    torn = tmp_path / "torn.wandb"
    torn.write_bytes(path.read_bytes()[:-5])
    assert record_payloads(torn) == whole[:-1]
