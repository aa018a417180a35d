"""``runs.RunFolder``: the state rule from real folders on disk, the refusals, the resume-config
check, and the layout spelled in ``runs/folder.py`` alone."""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_dims.errors import ConfigError
from lightning_dims.records import ResultsRecord, write_record
from lightning_dims.runs.folder import CLAIM_NAME, RunFolder, RunState, SweepLayout
from lightning_dims.runs.reproducibility import STAMP_KEY

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_dims"
LAYOUT_LITERALS = ("last.ckpt", "claim.json", "attempts.jsonl", "args.json")
LAYOUT_NAMES = ("checkpoints", "logs")


def record(status: str, **fields) -> ResultsRecord:
    return ResultsRecord(run_id="r1", status=status, dataset="digits", arch="resnet18", n_train=100, seed=0, **fields)


def write_claim(folder: RunFolder, pid: int, host: str | None = None) -> None:
    folder.path.mkdir(parents=True, exist_ok=True)
    content = {"host": host or socket.gethostname(), "pid": pid, "token": "t", "started_at": "2026-01-01T00:00:00Z"}
    folder.claim_file.write_text(json.dumps(content))


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def write_checkpoint(path: Path, stamp: dict | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({} if stamp is None else {STAMP_KEY: stamp}, path)


@pytest.fixture
def folder(tmp_path) -> RunFolder:
    return SweepLayout(tmp_path).folder("r1")


def test_the_sweep_layout(tmp_path):
    layout = SweepLayout(tmp_path)
    folder = layout.folder("r1")
    assert folder.path == tmp_path / "runs" / "r1" and folder.record_file == tmp_path / "r1.record.json"
    assert folder.last_checkpoint == tmp_path / "runs" / "r1" / "checkpoints" / "last.ckpt"
    assert folder.claim_file == tmp_path / "runs" / "r1" / "claim.json"
    assert folder.journal_file == tmp_path / "runs" / "r1" / "attempts.jsonl"
    assert layout.log("r1") == tmp_path / "logs" / "r1.log" and layout.args_file("r1") == tmp_path / "logs" / "r1.args.json"
    alone = RunFolder.of_run(tmp_path / "runs", "r2")  # fit without --results_dir: the record in the run folder
    assert alone.record_file == tmp_path / "runs" / "r2" / "r2.record.json"


def test_a_folder_with_nothing_is_new(folder):
    assert folder.state() == (RunState.NEW, None)


def test_a_finished_record_is_finished_whatever_else_is_there(folder):
    write_record(folder.record_file, record("finished", finished_at="2026-01-02T03:04:05Z"))
    write_checkpoint(folder.last_checkpoint, None)
    write_claim(folder, os.getpid())
    assert folder.state() == (RunState.FINISHED, "2026-01-02T03:04:05Z")


def test_an_unreadable_record_is_corrupt(folder):
    folder.record_file.parent.mkdir(parents=True, exist_ok=True)
    folder.record_file.write_text('{"run_id": "r1", "stat')
    state, detail = folder.state()
    assert state is RunState.CORRUPT and detail


def test_a_live_claim_is_claimed_and_a_dead_one_is_not(folder):
    write_record(folder.record_file, record("failed", error="boom"))
    write_claim(folder, os.getpid())  # this process: alive
    state, detail = folder.state()
    assert state is RunState.CLAIMED and detail == f"by {socket.gethostname()}:{os.getpid()} since 2026-01-01T00:00:00Z"
    write_claim(folder, dead_pid())  # same host, process gone: stale, ignored
    assert folder.state() == (RunState.FAILED, "boom")


def test_a_silent_claim_from_another_host_goes_stale(folder, monkeypatch):
    write_claim(folder, 1, host="other-node")
    assert folder.state()[0] is RunState.CLAIMED  # fresh heartbeat
    old = time.time() - 3600
    os.utime(folder.claim_file, (old, old))
    monkeypatch.setenv("LIGHTNING_DIMS_CLAIM_TIMEOUT", "600")
    assert folder.state() == (RunState.NEW, None)


def test_a_checkpoint_without_a_finished_record_is_resumable(folder):
    write_checkpoint(folder.last_checkpoint, None)
    assert folder.state() == (RunState.RESUMABLE, None)
    write_record(folder.record_file, record("interrupted"))
    assert folder.state() == (RunState.RESUMABLE, "last attempt interrupted")


def test_an_unfinished_record_without_a_checkpoint_failed(folder):
    write_record(folder.record_file, record("failed", error="RuntimeError: boom"))
    assert folder.state() == (RunState.FAILED, "RuntimeError: boom")


def test_states_print_as_their_values():
    assert [f"{state}" for state in RunState] == ["finished", "corrupt", "claimed", "resumable", "failed", "new"]


def test_a_finished_run_and_an_earlier_checkpoint_are_refused(folder):
    folder.refuse_finished()
    folder.refuse_overwrite(None)
    write_checkpoint(folder.last_checkpoint, None)
    with pytest.raises(ConfigError, match=r"has a checkpoint from an earlier attempt .*--ckpt_path last"):
        folder.refuse_overwrite(None)
    folder.refuse_overwrite("last")
    write_record(folder.record_file, record("finished", config_hash="abc"))
    with pytest.raises(ConfigError, match=r"run 'r1' already finished \(status finished, .*config_hash abc\)"):
        folder.refuse_finished()


def test_a_resume_under_another_config_is_refused_naming_the_keys(folder):
    config = {"data.seed": 0, "model.lr": 0.001, "trainer.max_epochs": 4}
    write_checkpoint(folder.last_checkpoint, {"run_id": "r1", "config_hash": "old", "config": {**config, "model.lr": 0.01}})
    with pytest.raises(ConfigError, match=r"resume refused: .*config_hash old, now new\): model\.lr: 0\.01 -> 0\.001\. Resume"):
        folder.check_resume("last", "new", config)
    assert folder.check_resume("last", "old", config) is None  # the same config resumes
    assert folder.check_resume(None, "new", config) is None and folder.check_resume("best", "new", config) is None


def test_a_refused_resume_names_six_keys_and_counts_the_rest(folder):
    old = {f"key{i}": i for i in range(9)}
    write_checkpoint(folder.last_checkpoint, {"config_hash": "old", "config": old})
    with pytest.raises(ConfigError, match=r"\): key0: 0 -> \"<unset>\"; .*; key5: 5 -> \"<unset>\"; and 3 more\. Resume"):
        folder.check_resume("last", "new", {})


def test_resume_checks_of_missing_and_unstamped_checkpoints(folder, tmp_path):
    assert folder.check_resume("last", "h", {}) is None  # nothing to resume yet: a fresh start
    with pytest.raises(ConfigError, match="--ckpt_path .*nope.ckpt: no such checkpoint file"):
        folder.check_resume(str(tmp_path / "nope.ckpt"), "h", {})
    write_checkpoint(folder.last_checkpoint, None)
    assert folder.check_resume("last", "h", {}) == f"{folder.last_checkpoint} carries no config_hash (older version): resuming unchecked"


def test_an_unwritable_folder_is_refused_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"cannot write to the run folder .*file/r1 .*choose a writable --run_dir"):
        RunFolder.of_run(blocker, "r1").make_writable()
    folder = RunFolder.of_run(tmp_path / "runs", "r1", tmp_path / "results")
    folder.make_writable()
    assert folder.path.is_dir() and folder.record_file.parent.is_dir() and not list(folder.path.iterdir())


def test_a_claimed_folder_is_refused_to_a_second_claimant(folder):
    from lightning_dims.runs.claims import ClaimHeldError

    with folder.claim("run 'r1'"):
        assert folder.state()[0] is RunState.CLAIMED
        with pytest.raises(ClaimHeldError, match="run 'r1' is being run by"):
            folder.claim("run 'r1'")
    assert not folder.claim_file.exists()


def string_constants(tree: ast.AST) -> list[ast.Constant]:
    """Every string literal of a module except docstrings (prose may name the files)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def layout_spellings(source: str) -> list[str]:
    """The run-folder layout spelled in ``source``: file names, folder names, ``ModelCheckpoint(filename="last")``.

    Strings with spaces are prose (help texts, messages) and may name the files.
    """
    tree = ast.parse(source)
    found = [
        f"line {node.lineno}: {node.value!r}"
        for node in string_constants(tree)
        if not any(space in node.value for space in " \n")
        and (any(literal in node.value for literal in LAYOUT_LITERALS) or node.value in LAYOUT_NAMES)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "filename" and isinstance(node.value, ast.Constant) and node.value.value == "last":
            found.append(f"line {node.value.lineno}: filename='last'")
    return found


def test_layout_spellings_are_found():
    assert sorted(layout_spellings('p = folder / "checkpoints" / "last.ckpt"\n')) == ["line 1: 'checkpoints'", "line 1: 'last.ckpt'"]
    assert layout_spellings("ModelCheckpoint(dirpath=d, filename='last')\n") == ["line 1: filename='last'"]
    assert layout_spellings('f"{results / \'logs\'}"\n') == ["line 1: 'logs'"]
    assert layout_spellings('"""Writes ``claim.json``."""\n') == []  # a docstring may name the file
    assert layout_spellings('help="e.g. runs/<id>/checkpoints/last.ckpt"\n') == []  # and so may prose
    assert layout_spellings('p = f"{run}/checkpoints/last.ckpt"\n') == ["line 1: '/checkpoints/last.ckpt'"]


def test_the_run_folder_layout_is_spelled_only_in_runs_folder():
    spelled = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "runs" / "folder.py" and (found := layout_spellings(path.read_text()))
    }
    assert spelled == {}, f"use lightning_dims.runs.folder (RunFolder, SweepLayout) instead: {spelled}"
    assert CLAIM_NAME in (PACKAGE / "runs" / "folder.py").read_text()


def layout_constants() -> set[str]:
    """The module-level string constants of ``runs/folder.py`` (``CLAIM_NAME``, ``CHECKPOINT_DIR``, ...)."""
    tree = ast.parse((PACKAGE / "runs" / "folder.py").read_text())
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
    }


def test_no_module_builds_a_layout_path_from_the_folder_constants():
    """Outside ``runs/folder.py`` a path is asked of ``RunFolder``/``SweepLayout`` (``journal_file``, ``claim_file``),
    never joined from the names (``AttemptJournal(folder / JOURNAL_NAME)`` was how ``attempts.py`` did it)."""
    constants = layout_constants()
    assert {"CLAIM_NAME", "JOURNAL_NAME", "CHECKPOINT_DIR", "LAST_CHECKPOINT", "AGENT_ARGS_NAME"} <= constants
    imported = {
        f"{path.relative_to(PACKAGE)}:{node.lineno}: {alias.name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "runs" / "folder.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "lightning_dims.runs.folder"
        for alias in node.names
        if alias.name in constants
    }
    assert imported == set(), f"ask RunFolder/SweepLayout for the path instead: {sorted(imported)}"


def test_the_journal_and_the_last_sign_of_life_are_the_folders(folder):
    from lightning_dims.runs.attempts import AttemptJournal

    assert folder.last_sign_of_life() is None  # no folder yet
    write_checkpoint(folder.last_checkpoint, None)
    old = time.time() - 100
    os.utime(folder.last_checkpoint, (old, old))
    write_claim(folder, os.getpid())  # newer, but a claim is no sign of the run's work
    assert folder.last_sign_of_life() == pytest.approx(old)
    AttemptJournal(folder.journal_file).start(None, None)
    assert folder.journal_file.is_file() and folder.last_sign_of_life() > old + 50


def test_admission_follows_the_state(folder):
    fetched = []
    assert folder.admit(None, fetch_checkpoint=fetched.append) is None and fetched == [folder.last_checkpoint]  # NEW
    write_record(folder.record_file, record("failed", error="boom"))
    assert folder.admit(None) is None  # FAILED: starts again
    write_checkpoint(folder.last_checkpoint, None)  # RESUMABLE
    with pytest.raises(ConfigError, match="has a checkpoint from an earlier attempt"):
        folder.admit(None)
    assert folder.admit(None, resume=True) == "last" and folder.admit("last") == "last"
    write_claim(folder, os.getpid())  # a live claim is the claim's to refuse, not admission's
    assert folder.state()[0] is RunState.CLAIMED and folder.admit(None, resume=True) == "last"
    folder.last_checkpoint.unlink()
    fetch = lambda path: write_checkpoint(path, None)  # noqa: E731  (W&B brings the resume point)
    assert folder.admit(None, resume=True, fetch_checkpoint=fetch) == "last"
    write_record(folder.record_file, record("finished"))
    with pytest.raises(ConfigError, match="already finished"):
        folder.admit("last", resume=True)
