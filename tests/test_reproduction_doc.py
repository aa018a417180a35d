"""docs/reproduction.md quotes what its own commands produce: the stored records, rebuilt into a
report by the documented `report` command, give the stored reports' findings, and the page
quotes those findings verbatim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_dims.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs"
EVIDENCE = DOCS / "reproduction"


@pytest.mark.parametrize("ref_n", [1200, 150])
def test_the_stored_records_rebuild_the_documented_reports(tmp_path, ref_n):
    stored = json.loads((EVIDENCE / f"report-ref{ref_n}" / "fits.json").read_text())
    out = tmp_path / f"report-ref{ref_n}"
    args = ["report", "--results", str(EVIDENCE / "records"), "--out", str(out), "--ref-n", str(ref_n),
            "--measurements", str(EVIDENCE / "paper_spec.jsonl"), "--vary", "data.val_size", "--vary", "data.test_size"]
    assert main(args) == 0
    rebuilt = json.loads((out / "fits.json").read_text())
    assert rebuilt["n_runs"] == stored["n_runs"] == 25
    assert [f["text"] for f in rebuilt["findings"]] == [f["text"] for f in stored["findings"]]
    assert rebuilt["task_properties"] == stored["task_properties"]
    page = (DOCS / "reproduction.md").read_text()
    if ref_n == 1200:  # the page quotes every ref-1200 finding, and the ref-150 ones that differ
        for finding in stored["findings"]:
            assert finding["text"] in page
