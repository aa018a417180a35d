"""Tiny copies of the radiology datasets' official downloads, written by the tests in the real formats.

DICOM through pydicom (``Dataset.set_pixel_data``), NIfTI through nibabel, the label tables as the
providers ship them (column names, path conventions, separators), and the folder layouts of TCIA's
"Classic Directory Name", Kaggle, Stanford ML Group and CBICA downloads.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from lightning_dims.cli import main as cli_main

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    spacing: tuple[float, float] | None = (0.5, 0.5),
    patient: str = "P0",
    sop_class: str = CT_STORAGE,
    series_uid: str | None = None,
    instance: int = 1,
) -> str:
    """Write ``pixels`` ((rows, cols) or (frames, rows, cols)) as a DICOM file; returns its SOPInstanceUID."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = sop_uid
    dataset.PatientID = patient
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    dataset.InstanceNumber = instance
    if spacing is not None:
        dataset.PixelSpacing = [f"{spacing[0]:g}", f"{spacing[1]:g}"]
    pixels = np.asarray(pixels)
    dataset.set_pixel_data(pixels, photometric_interpretation=photometric, bits_stored=pixels.itemsize * 8, generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return sop_uid


def pydicom_test_file(name: str) -> Path:
    """One of the files pydicom ships (CT_small.dcm, MR_small.dcm, MR_truncated.dcm)."""
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name, download=False)
    assert found is not None, f"pydicom no longer ships {name}"
    return Path(found)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_gray(path: Path, array: np.ndarray, **save_options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_options)
    return path


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def read_manifest_rows(folder: Path) -> list[dict]:
    with open(folder / "manifest.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def read_report(folder: Path) -> list[dict]:
    with open(folder / "prepare_report.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def reasons(folder: Path, kind: str) -> dict[str, list[str]]:
    """reason -> sources of the report's issues of ``kind``."""
    found: dict[str, list[str]] = {}
    for issue in read_report(folder):
        if issue["kind"] == kind:
            found.setdefault(issue["reason"], []).append(issue["source"])
    return found


def run_prepare(capsys, *args: str) -> tuple[int, str, str]:
    """``lightning-dims prepare ARGS`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli_main(["prepare", *args, "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def measure_json(capsys, dataset: str, root: Path, n: int, test: int, size: int = 16) -> dict:
    """``lightning-dims measure --json`` on a prepared folder, with sizes fit for a tiny fixture."""
    capsys.readouterr()
    code = cli_main(["measure", "--dataset", dataset, "--data-root", str(root), "--n", str(n), "--val-size", "0",
                     "--test-size", str(test), "--img-size", str(size), "--k", "3", "--m", str(n), "--json", "--no-cache"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def copy_file(source: Path, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    return destination


# ---- whole downloads, shared by the prepare tests ----------------------------------------------

RSNA_SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
"""The subtype rows RSNA's label table has per image (``ID_<image>_<subtype>``)."""


def make_rsna(root, rng, n=24):
    """stage_2_train/ + stage_2_train.csv; returns {image id: (pixels, label, patient, monochrome1)} of the usable images."""
    images, rows = {}, []
    for index in range(n):
        image_id = f"ID_{index:09x}"
        pixels = rng.integers(0, 3000, (40, 40)).astype(np.uint16)
        label, patient, mono1 = index % 2, f"ID_patient{index // 3}", index == 0
        write_dicom(root / "stage_2_train" / f"{image_id}.dcm", pixels, patient=patient, photometric="MONOCHROME1" if mono1 else "MONOCHROME2")
        images[image_id] = (pixels, label, patient, mono1)
        rows += [[f"{image_id}_{subtype}", int(label and subtype in ("any", "subdural"))] for subtype in RSNA_SUBTYPES]
    signed = np.full((40, 40), -2000, dtype=np.int16)
    signed[8:32, 8:32] = rng.integers(0, 1500, (24, 24))
    write_dicom(root / "stage_2_train" / "ID_signed.dcm", signed, patient="ID_patientS")
    images["ID_signed"] = (signed, 1, "ID_patientS", False)
    copy_file(pydicom_test_file("CT_small.dcm"), root / "stage_2_train" / "ID_ctsmall.dcm")
    write_dicom(root / "stage_2_train" / "ID_unequal.dcm", rng.integers(0, 100, (40, 40)).astype(np.uint16), spacing=(0.5, 0.7))
    copy_file(pydicom_test_file("MR_truncated.dcm"), root / "stage_2_train" / "ID_truncated.dcm")
    write_dicom(root / "stage_2_train" / "ID_nolabel.dcm", rng.integers(0, 100, (40, 40)).astype(np.uint16))
    (root / "stage_2_train" / "notes.txt").write_text("not an image\n")
    for image_id, label in (("ID_signed", 1), ("ID_ctsmall", 0), ("ID_unequal", 0), ("ID_truncated", 1), ("ID_ghost", 0)):
        rows += [[f"{image_id}_{subtype}", label if subtype == "any" else 0] for subtype in RSNA_SUBTYPES]
    write_csv(root / "stage_2_train.csv", ["ID", "Label"], rows)
    return images


CHEXPERT_FINDINGS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Edema", "Pleural Effusion", "Support Devices"]
CHEXPERT_CELLS = [1, "", -1, 0, 1, -1, "", 1, 0, 1]


def make_chexpert(root, rng, patients=8):
    """CheXpert-v1.0/train.csv and its JPEGs; returns {listed path: Pleural Effusion cell}."""
    rows, cells = [], {}
    for patient in range(1, patients + 1):
        for study in (1, 2):
            for view in (1, 2):
                listed = f"CheXpert-v1.0/train/patient{patient:05d}/study{study}/view{view}_{'frontal' if view == 1 else 'lateral'}.jpg"
                cell = CHEXPERT_CELLS[len(rows) % len(CHEXPERT_CELLS)]
                cells[listed] = cell
                if listed != "CheXpert-v1.0/train/patient00002/study1/view1_frontal.jpg":  # listed, never downloaded
                    write_gray(root / listed, rng.integers(0, 256, (32, 32), dtype=np.uint8), quality=90)
                rows.append([listed, "Female", 60, "Frontal" if view == 1 else "Lateral", "AP", "", "", "", "", "", cell, 1])
    write_csv(root / "CheXpert-v1.0" / "train.csv", ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS], rows)
    write_csv(root / "CheXpert-v1.0" / "valid.csv", ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_FINDINGS], [])
    return cells
