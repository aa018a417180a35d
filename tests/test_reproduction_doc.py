"""docs/reproduction.md quotes what its own commands produce: the stored records, rebuilt into a
report by the documented `report` command, give the stored reports' findings, and the page
quotes those findings verbatim. Both reproductions are kept: today's (2026-12-04, 10 tasks,
60 runs, ref N 250 and 600) and the first (2026-11-29, 25 runs, ref N 1200 and 150), whose
verdicts the page reports as re-analysed with the task as the unit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_dims.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs"
EVIDENCE = DOCS / "reproduction"
CURRENT, FIRST = EVIDENCE / "2026-12-04", EVIDENCE / "2026-11-29"


def rebuild(evidence: Path, ref_n: int, out: Path) -> tuple[dict, dict]:
    stored = json.loads((evidence / f"report-ref{ref_n}" / "fits.json").read_text())
    args = ["report", "--results", str(evidence / "records"), "--out", str(out), "--ref-n", str(ref_n),
            "--measurements", str(evidence / "paper_spec.jsonl"), "--vary", "data.val_size", "--vary", "data.test_size"]
    assert main(args) == 0
    return stored, json.loads((out / "fits.json").read_text())


@pytest.mark.parametrize(("evidence", "ref_n", "runs"), [(CURRENT, 250, 60), (CURRENT, 600, 60), (FIRST, 1200, 25), (FIRST, 150, 25)])
def test_the_stored_records_rebuild_the_documented_reports(tmp_path, evidence, ref_n, runs):
    stored, rebuilt = rebuild(evidence, ref_n, tmp_path / f"report-ref{ref_n}")
    assert rebuilt["n_runs"] == stored["n_runs"] == runs
    assert [f["text"] for f in rebuilt["findings"]] == [f["text"] for f in stored["findings"]]
    assert rebuilt["task_properties"] == stored["task_properties"]


def test_the_page_quotes_every_current_finding_and_the_ref600_ones_that_differ():
    page = (DOCS / "reproduction.md").read_text()
    ref250 = [f["text"] for f in json.loads((CURRENT / "report-ref250" / "fits.json").read_text())["findings"]]
    ref600 = [f["text"] for f in json.loads((CURRENT / "report-ref600" / "fits.json").read_text())["findings"]]
    for text in ref250 + [t for t in ref600 if t not in ref250 and "Test loss falls" not in t and "d_repr" not in t]:
        assert text in page, text[:80]


def test_the_first_reproductions_fgsm_verdict_is_task_level_and_not_established():
    fits = json.loads((FIRST / "report-ref1200" / "fits.json").read_text())
    fgsm = next(f for f in fits["findings"] if f["claim"] == "FGSM penalty rises with K_F")
    assert not fgsm["holds"] and "over 5 tasks of 4 datasets (20 runs)" in fgsm["text"]
    assert "r = 0.88 [-0.01, 0.99] over 5 tasks" in (DOCS / "reproduction.md").read_text()
