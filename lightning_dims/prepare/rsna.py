"""RSNA Intracranial Hemorrhage Detection (RSNA-IH-CT): Kaggle's stage 2 training set.

Download (Kaggle, rsna-intracranial-hemorrhage-detection): ``stage_2_train/ID_<image>.dcm`` and
``stage_2_train.csv`` with rows ``ID_<image>_<subtype>,Label``.

The authors' procedure (mazurowski-lab/radiologyintrinsicmanifolds, ``data/rsna/png_extractor.ipynb``
and ``src/dataset.py``), re-implemented:

* every DICOM of ``stage_2_train`` is an image; its label is the ``Label`` of row
  ``ID_<image>_any`` (any haemorrhage; ``--subtype`` picks another row, as the authors' task-choice
  experiment did with ``subarachnoid``);
* pixels: stored values (no HU rescale, no brain window) scaled by 255 / max, resized to 224 x 224
  (skimage's resize), truncated to uint8, inverted for MONOCHROME1 (:mod:`~lightning_dims.prepare.imaging`);
* unequal ``PixelSpacing`` is refused.

Deviations: files the authors' loop skipped silently (undecodable pixel data) are reported; negative
stored values are clipped to 0 (reported as notes) where the authors' uint8 cast wrapped them; a
blank image (maximum <= 0) is reported instead of written as zeros. ``patient_id`` is the DICOM
PatientID (the authors split per image).
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning_dims.prepare.dicom import authors_slice
from lightning_dims.prepare.imaging import write_image
from lightning_dims.prepare.registry import (
    SEED_OPTION,
    Context,
    Option,
    PrepareError,
    Preparer,
    per_class_option,
    register_preparer,
    size_option,
)
from lightning_dims.prepare.sources import find_file, read_table, relative
from lightning_dims.prepare.tasks import Issue, Plan, Task, TaskResult

__all__ = ["PREPARER", "SUBTYPES", "convert", "plan", "read_labels"]

SUBTYPES = ("any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")


def plan(source: Path, options: dict) -> Plan:
    labels_path = find_file(source, options["labels"], ("stage_2_train.csv", "stage_*_train.csv"), "--labels", "label table (stage_2_train.csv)")
    images = Path(options["images"]) if options["images"] else source / "stage_2_train"
    images = images if images.is_absolute() or images.is_dir() else source / images
    if not images.is_dir():
        raise PrepareError(f"no image folder {images}; pass --images DIR (the folder of stage_2_train/*.dcm)")
    labels, issues = read_labels(labels_path, options["subtype"], relative(labels_path, source))
    tasks, seen = [], set()
    for name in sorted(entry.name for entry in os.scandir(images) if entry.is_file()):
        file = relative(images / name, source)
        stem, suffix = os.path.splitext(name)
        if suffix.lower() != ".dcm" or name.startswith("."):
            issues.append(Issue("unexpected", "not a .dcm file", file))
        elif stem not in labels:
            issues.append(Issue("unexpected", f"no {options['subtype']} row in the label table", file))
        else:
            seen.add(stem)
            tasks.append(Task(stem, {"file": file, "image": stem, "label": labels[stem]}, labels[stem], file))
    for image in sorted(set(labels) - seen):
        issues.append(Issue("unexpected", "label row without image file", f"{relative(labels_path, source)}:{image}_{options['subtype']}"))
    return Plan(tasks, issues, per_class=options["per_class"], seed=options["seed"])


def read_labels(path: Path, subtype: str, shown: str) -> tuple[dict[str, int], list[Issue]]:
    """``ID_<image>_<subtype>,Label`` rows -> {``ID_<image>``: 0/1}; conflicting or non-0/1 rows are issues."""
    import pandas as pd

    frame = read_table(path, ("ID", "Label"), "label table", dtype={"ID": str})
    parts = frame["ID"].str.rsplit("_", n=1, expand=True)
    if parts.shape[1] != 2:
        raise PrepareError(f"{path}: IDs must look like ID_<image>_<subtype>, e.g. ID_63eb1e259_any")
    frame = frame.assign(image=parts[0], subtype=parts[1], value=pd.to_numeric(frame["Label"], errors="coerce"))
    frame = frame[frame["subtype"] == subtype]
    if frame.empty:
        raise PrepareError(f"{path}: no rows for subtype {subtype!r} (IDs like ID_<image>_{subtype})")
    issues = [Issue("unexpected", "label not 0 or 1", f"{shown}:{row.ID}", str(row.Label)) for row in frame[~frame["value"].isin([0, 1])].itertuples()]
    frame = frame[frame["value"].isin([0, 1])].drop_duplicates(["image", "value"])
    conflicting = frame["image"].duplicated(keep=False)
    issues += [Issue("unexpected", "conflicting labels", f"{shown}:{image}_{subtype}") for image in sorted(set(frame.loc[conflicting, "image"]))]
    frame = frame[~conflicting]
    return dict(zip(frame["image"], frame["value"].astype(int).tolist())), issues


def convert(payload: dict, context: Context) -> TaskResult:
    dataset, image, issues = authors_slice(context.source / payload["file"], context.options["size"], payload["file"])
    path = f"images/{payload['image']}.png"
    write_image(context.out / path, image)
    patient = str(dataset.get("PatientID", "") or "").strip()
    if not patient:
        patient = payload["image"]
        issues.append(Issue("note", "no PatientID; the image is its own patient group", payload["file"]))
    row = {
        "path": path,
        "label": payload["label"],
        "patient_id": patient,
        "sop_instance_uid": str(dataset.get("SOPInstanceUID", "")),
        "study_instance_uid": str(dataset.get("StudyInstanceUID", "")),
        "series_instance_uid": str(dataset.get("SeriesInstanceUID", "")),
        "source": payload["file"],
    }
    return TaskResult(rows=[row], issues=issues)


PREPARER = register_preparer(
    Preparer(
        name="rsna",
        title="RSNA intracranial haemorrhage CT slices (stage 2 training set)",
        obtain="https://www.kaggle.com/c/rsna-intracranial-hemorrhage-detection/data (accept the competition rules; kaggle competitions download -c rsna-intracranial-hemorrhage-detection)",
        source="a folder holding stage_2_train.csv and stage_2_train/ (ID_<image>.dcm files)",
        options=(
            Option("labels", None, "the label table (default: stage_2_train.csv under --source)", location=True),
            Option("images", None, "the DICOM folder (default: stage_2_train/ under --source)", location=True),
            Option("subtype", "any", "label column: the Label of rows ID_<image>_<subtype>", choices=SUBTYPES),
            size_option(224),
            per_class_option(0),
            SEED_OPTION,
        ),
        plan=plan,
        convert=convert,
        columns=("sop_instance_uid", "study_instance_uid", "series_instance_uid", "source"),
        doc="docs/datasets/rsna.md",
    )
)
