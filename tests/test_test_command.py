"""The test command: README's quick start and ``.ci/run`` run the same one, and under ``CI=true`` a
missing real-data folder stops it at once with exit status 4, with or without pytest-xdist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    """The second command of README's quick start."""
    quick_start = REPO.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("```bash", 1)[1]
    commands = [line for line in quick_start.split("```", 1)[0].splitlines() if line.strip()]
    assert len(commands) == 2, commands
    return commands[1]


def test_ci_runs_the_readmes_test_command():
    command = readme_test_command()
    assert "pytest" in command
    ci_lines = [line.strip() for line in REPO.joinpath(".ci", "run").read_text().splitlines()]
    assert command in ci_lines


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_ci_without_the_real_data_stops_before_any_test(tmp_path, workers):
    env = dict(os.environ, CI="true", LIGHTNING_DIMS_DATA=str(tmp_path / "missing"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, "tests/test_knn.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"CI=true but LIGHTNING_DIMS_DATA={tmp_path / 'missing'} is not a folder" in done.stdout + done.stderr
    assert " passed" not in done.stdout and "INTERNALERROR" not in done.stdout + done.stderr
