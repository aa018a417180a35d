"""OAI from your knee crops and an NDA-layout kxr_sq_bu00.txt: READPRJ 15 grades, KL 0-1 vs 2-4, patient = participant."""

from __future__ import annotations

import numpy as np
from tests.helpers.official_layouts import measure_json, read_manifest_rows, reasons, run_prepare, write_gray

GRADES = {("9000001", 1): 0, ("9000001", 2): 1, ("9000002", 1): 2, ("9000002", 2): 4, ("9000003", 1): 3, ("9000003", 2): 0,
          ("9000004", 1): 1, ("9000004", 2): 2, ("9000005", 1): 0, ("9000005", 2): 3, ("9000006", 1): 2, ("9000006", 2): 1}  # fmt: skip


def make_oai(root, rng):
    """kxr_sq_bu00.txt (pipe-separated, other reading projects first) and crops named <ID>_<R|L>.png in 0/ and 1/."""
    lines = ["ID|SIDE|READPRJ|VERSION|V00XRKL|V00XRJSM|V00XRJSL"]
    lines += [f"{identifier}|{side}|37|1.6|{4 - grade}|0|0" for (identifier, side), grade in GRADES.items()]  # another project disagrees
    lines += [f"{identifier}|{side}|15|1.6|{grade}|0|0" for (identifier, side), grade in GRADES.items()]
    lines += ["9000007|1|15|1.6|.|0|0"]  # a missing grade, as OAI writes it
    (root / "Package_1197300").mkdir(parents=True)
    (root / "Package_1197300" / "kxr_sq_bu00.txt").write_text("\n".join(lines) + "\n")
    for (identifier, side), grade in GRADES.items():
        folder = "1" if grade >= 2 else "0"
        if (identifier, side) == ("9000003", 1):
            folder = "0"  # a crop filed under the wrong class
        write_gray(root / "crops" / folder / f"{identifier}_{'R' if side == 1 else 'L'}.png", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    write_gray(root / "crops" / "0" / "9000007_R.png", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    write_gray(root / "crops" / "extra" / "9000002_L.png", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    (root / "crops" / "readme.txt").write_text("crops made with our own detector\n")


def test_oai_grades_from_project_15_and_reported_crops(tmp_path, rng, capsys):
    make_oai(tmp_path / "oai", rng)
    out = tmp_path / "data" / "oai"
    code, _, stderr = run_prepare(capsys, "oai", "--source", str(tmp_path / "oai"), "--out", str(out))
    assert code == 0, stderr
    rows = read_manifest_rows(out)
    assert {(row["patient_id"], row["side"]): (int(row["kl_grade"]), int(row["label"])) for row in rows} == {
        (identifier, "R" if side == 1 else "L"): (grade, int(grade >= 2)) for (identifier, side), grade in GRADES.items()
    }
    assert all((out / row["path"]).read_bytes() == (tmp_path / "oai" / row["source"]).read_bytes() for row in rows)
    assert reasons(out, "unexpected") == {
        "no V00XRKL grade (READPRJ 15)": ["crops/0/9000007_R.png"],
        "not a crop named <ID>_<R|L>.<png|jpg|tif>": ["crops/readme.txt"],
        "second crop of the same knee": ["crops/extra/9000002_L.png"],
    }
    assert reasons(out, "note") == {"crop folder disagrees with the KL grade; labelled by the grade": ["crops/0/9000003_R.png"]}
    record = measure_json(capsys, "oai", tmp_path / "data", n=4, test=2)
    assert record["n"] == 4


def test_oai_help_says_the_crops_are_yours(capsys):
    from lightning_dims.cli import main

    try:
        main(["prepare", "oai", "--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    assert "knee crops you make (the authors' detector weights are not public)" in text
