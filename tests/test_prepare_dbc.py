"""DBC from a TCIA classic-layout fixture: pre-contrast slices, the 5-slice margin rule, TCIA's typo, the draw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tests.helpers.official_layouts import MR_STORAGE, measure_json, read_manifest_rows, read_png, reasons, run_prepare, write_csv, write_dicom

from lightning_dims.prepare.dbc import slice_label, typo_candidates

BOXES = {1: (10, 15), 2: (12, 20), 3: (5, 8), 4: None}
SLICES = 30
MANIFEST = "manifest-1607053360376"


def make_dbc(root, rng):
    """The classic DICOM tree, the mapping and boxes tables; returns {(patient, slice): (pixels, monochrome1)} of pre slices."""
    pre, mapping = {}, []
    for patient, box in BOXES.items():
        name = f"Breast_MRI_{patient:03d}"
        for sequence, count in (("pre", SLICES), ("post_1", 6)):
            series = f"1.3.6.1.4.1.14519.5.2.1.{patient}{len(sequence)}"
            for number in range(1, count + 1):
                classic = f"Duke-Breast-Cancer-MRI/{name}/1.3.6.1.4.1.14519.5.2.1.{patient}/{series}/1-{number:03d}.dcm"
                on_disk = classic.replace("/1-012.dcm", "/1-12.dcm") if (patient, sequence) == (1, "pre") else classic
                pixels = rng.integers(0, 4000, (24, 24)).astype(np.uint16)
                mono1 = patient == 3
                path = root / MANIFEST / on_disk
                if (patient, sequence, number) == (2, "pre", 1):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b"not a DICOM file at all")
                else:
                    write_dicom(path, pixels, patient=name, sop_class=MR_STORAGE, photometric="MONOCHROME1" if mono1 else "MONOCHROME2", series_uid=series)
                if sequence == "pre":
                    pre[(name, number)] = (pixels, mono1)
                original = f"DICOM_Images/{name}/{sequence}/{name}_{sequence}_{number:03d}.dcm"
                mapping.append([f"1.2.3.{patient}.{number}", original, classic, f"Duke-Breast-Cancer-MRI/BreastMRI{patient:03d}/x/{number}.dcm"])
    write_csv(root / "maps" / "Breast-Cancer-MRI-filepath_filename-mapping.csv", ["sop_instance_UID", "original_path_and_filename", "classic_path", "descriptive_path"], mapping)
    boxes = [[f"Breast_MRI_{p:03d}", 100, 140, 200, 230, *box] for p, box in BOXES.items() if box is not None]
    write_csv(root / "maps" / "Annotation_Boxes.csv", ["Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice"], boxes)
    return pre


def expected_labels() -> dict[tuple[str, int], int]:
    """The rule written out as sets, independently of slice_label."""
    labels = {}
    for patient, box in BOXES.items():
        if box is None:
            continue
        start, end = box
        for number in range(1, SLICES + 1):
            if number in range(start, end):
                labels[(f"Breast_MRI_{patient:03d}", number)] = 1
            elif number <= start - 5 or number >= end + 6:
                labels[(f"Breast_MRI_{patient:03d}", number)] = 0
    return labels


def test_slice_label_margins():
    assert [slice_label(s, 10, 15, 5) for s in (4, 5, 6, 9, 10, 14, 15, 20, 21)] == [0, 0, None, None, 1, 1, None, None, 0]
    assert typo_candidates(Path("a/1-0052.dcm")) == [Path("a/1-052.dcm"), Path("a/1-52.dcm")]
    assert typo_candidates(Path("a/1-52.dcm")) == []


def test_dbc_pre_slices_margins_typo_inversion_patients(tmp_path, rng, capsys):
    pre = make_dbc(tmp_path / "dbc_download", rng)
    out = tmp_path / "data" / "dbc"
    code, stdout, stderr = run_prepare(capsys, "dbc", "--source", str(tmp_path / "dbc_download"), "--out", str(out), "--per-class", "0")
    assert code == 0, stderr
    rows = read_manifest_rows(out)
    labels = {(row["patient_id"], int(row["slice_index"])): int(row["label"]) for row in rows}
    wanted = expected_labels()
    del wanted[("Breast_MRI_002", 1)]  # the unreadable file
    assert labels == wanted
    assert all("post" not in row["source"] for row in rows) and len(rows) == len(wanted)
    for row in rows:
        pixels, mono1 = pre[(row["patient_id"], int(row["slice_index"]))]
        expected = (pixels.astype(float) * 255 / pixels.max()).astype(np.uint8)
        assert np.array_equal(read_png(out / row["path"]), np.invert(expected) if mono1 else expected)
    assert {row["series_uid"] for row in rows if row["patient_id"] == "Breast_MRI_001"} == {"1.3.6.1.4.1.14519.5.2.1.13"}
    assert reasons(out, "fixed") == {"TCIA mapping typo: extra leading zero": [f"{MANIFEST}/Duke-Breast-Cancer-MRI/Breast_MRI_001/1.3.6.1.4.1.14519.5.2.1.1/1.3.6.1.4.1.14519.5.2.1.13/1-012.dcm"]}
    assert list(reasons(out, "bad")) == ["unreadable DICOM"]
    assert reasons(out, "unexpected") == {"no annotation box for the patient": ["Breast_MRI_004"]}
    assert "1 fixed: 1 x TCIA mapping typo" in stderr
    spec = json.loads((out / "prepare.json").read_text())
    assert spec["counts"]["slices within the margin"] == 3 * SLICES - len(expected_labels())
    record = measure_json(capsys, "dbc", tmp_path / "data", n=12, test=8)
    assert record["n"] == 12


def test_dbc_draw_per_class_is_seeded_and_parallel_equals_serial(tmp_path, rng, capsys):
    make_dbc(tmp_path / "download", rng)
    manifests = {}
    for name, extra in (("serial", ["--workers", "1"]), ("parallel", ["--workers", "2"]), ("other_seed", ["--seed", "7"])):
        code, _, stderr = run_prepare(capsys, "dbc", "--source", str(tmp_path / "download"), "--out", str(tmp_path / name), "--per-class", "6", *extra)
        assert code == 0, stderr
        manifests[name] = sorted((row["source"], row["label"]) for row in read_manifest_rows(tmp_path / name))
    assert manifests["serial"] == manifests["parallel"]
    assert manifests["serial"] != manifests["other_seed"]
    assert [label for _, label in manifests["serial"]].count("0") == 6 and [label for _, label in manifests["serial"]].count("1") == 6
