"""CheXpert from a Stanford-layout fixture: the authors' negatives (blank and -1), ours (blank and 0), the draw, copies."""

from __future__ import annotations

from tests.helpers.official_layouts import make_chexpert, measure_json, read_manifest_rows, reasons, run_prepare

def test_chexpert_authors_negatives_are_blank_and_uncertain(tmp_path, rng, capsys):
    cells = make_chexpert(tmp_path / "stanford", rng)
    out = tmp_path / "data" / "chexpert"
    code, _, stderr = run_prepare(capsys, "chexpert", "--source", str(tmp_path / "stanford"), "--out", str(out))
    assert code == 0, stderr
    rows = read_manifest_rows(out)
    missing = "CheXpert-v1.0/train/patient00002/study1/view1_frontal.jpg"
    expected = {listed: int(cell == 1) for listed, cell in cells.items() if cell in (1, "", -1) and listed != missing}
    assert {row["source"]: int(row["label"]) for row in rows} == expected
    for row in rows:
        assert (out / row["path"]).read_bytes() == (tmp_path / "stanford" / row["source"]).read_bytes()
        assert row["patient_id"] == row["source"].split("/")[2] and row["path"] == "images/" + row["source"].removeprefix("CheXpert-v1.0/")
    assert reasons(out, "bad") == {"listed file missing": [missing]}
    assert '"rows not used by the label rule": ' + str(sum(cell == 0 for cell in cells.values())) in (out / "prepare.json").read_text()
    record = measure_json(capsys, "chexpert", tmp_path / "data", n=8, test=4)
    assert record["n"] == 8
    record = measure_json(capsys, "csv", out / "manifest.csv", n=8, test=4)
    assert record["dataset"] == "csv" and record["n"] == 8


def test_chexpert_our_negatives_and_the_draw(tmp_path, rng, capsys):
    cells = make_chexpert(tmp_path / "stanford", rng)
    out = tmp_path / "chexpert"
    code, _, stderr = run_prepare(capsys, "chexpert", "--source", str(tmp_path / "stanford" / "CheXpert-v1.0"), "--out", str(out), "--negatives", "0,blank", "--per-class", "4", "--seed", "3")
    assert code == 0, stderr
    rows = read_manifest_rows(out)
    assert sorted(int(row["label"]) for row in rows) == [0] * 4 + [1] * 4
    assert all(cells[row["source"]] in ("", 0) for row in rows if row["label"] == "0")
    code, _, stderr = run_prepare(capsys, "chexpert", "--source", str(tmp_path / "stanford"), "--out", str(tmp_path / "paper"), "--paper", "--negatives", "blank,0")
    assert code == 2 and "--paper fixes every choice to the authors' procedure; drop --paper or --negatives blank,0 (the authors': blank,-1)" in stderr
