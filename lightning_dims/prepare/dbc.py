"""Duke Breast Cancer MRI (DBC): pre-contrast slices, tumour vs not, from TCIA's classic layout.

Download (TCIA, Duke-Breast-Cancer-MRI): the images with the NBIA Data Retriever using the
"Classic Directory Name" convention (``manifest-<n>/Duke-Breast-Cancer-MRI/Breast_MRI_<nnn>/<study
UID>/<series UID>/<n>-<mmm>.dcm``), the file-path mapping table (columns
``original_path_and_filename``, ``classic_path``) and the annotation boxes table (``Patient ID``,
``Start Slice``, ``End Slice``), both saved as CSV (or read as XLSX with openpyxl).

The authors' procedure (mazurowski-lab/radiologyintrinsicmanifolds, ``data/dbc/png_extractor.ipynb``
and ``make_subset.ipynb``), re-implemented:

* slices: mapping rows whose ``original_path_and_filename`` contains ``pre`` (the fat-saturated
  pre-contrast series); the slice index is the number ending that file name, the patient its
  ``Breast_MRI_<nnn>`` folder;
* label, with the patient's box rows ``start = Start Slice``, ``end = End Slice``: positive when
  ``start <= slice < end``; negative when ``slice + 5 <= start`` or ``slice - 5 > end`` (a 5-slice
  margin); any other slice is dropped;
* pixels: stored values scaled by 255 / max, truncated to uint8, inverted for MONOCHROME1, native
  size; unequal ``PixelSpacing`` refused;
* 10,000 slices per class drawn at random (seeded here; refused files are replaced by the next draw).

TCIA's mapping table names some files with one leading zero too many after the dash (``1-052.dcm``
for ``1-52.dcm``); the authors' notebook retried without it, and so does this (each fix is reported
as ``fixed``). Deviations: boxes are looked up by ``Patient ID`` (the authors indexed the table by
row number, which equals it when the table is sorted); only the drawn slices are read.
"""

from __future__ import annotations

import re
from pathlib import Path

from lightning_dims.prepare.dicom import authors_slice
from lightning_dims.prepare.imaging import write_image
from lightning_dims.prepare.registry import (
    SEED_OPTION,
    Context,
    Option,
    PrepareError,
    Preparer,
    non_negative_int,
    per_class_option,
    register_preparer,
    size_option,
)
from lightning_dims.prepare.sources import find_file, read_table
from lightning_dims.prepare.tasks import BadFile, Issue, Plan, Task, TaskResult

__all__ = [
    "PATIENT",
    "PREPARER",
    "SLICE",
    "TYPO",
    "convert",
    "image_root",
    "locate",
    "plan",
    "slice_label",
    "text",
    "typo_candidates",
]

PATIENT = re.compile(r"Breast_MRI_\d+")
SLICE = re.compile(r"(\d+)\.dcm$", re.IGNORECASE)
TYPO = re.compile(r"^(?P<head>.*-)0(?P<tail>\d+\.dcm)$", re.IGNORECASE)


def slice_label(index: int, start: int, end: int, margin: int) -> int | None:
    """1 inside the tumour box (``start <= index < end``), 0 at least ``margin`` slices outside it, None between."""
    if start <= index < end:
        return 1
    if index + margin <= start or index - margin > end:
        return 0
    return None


def typo_candidates(path: Path) -> list[Path]:
    """The names TCIA's mapping table may have mistyped ``path`` as: leading zeros after the dash removed one by one."""
    candidates = []
    while (match := TYPO.match(path.name)) is not None:
        path = path.with_name(match["head"] + match["tail"])
        candidates.append(path)
    return candidates


def image_root(source: Path, first_component: str) -> Path:
    """The folder the mapping's ``classic_path`` values are relative to: ``--source`` or a ``manifest-*`` folder in it."""
    if (source / first_component).is_dir():
        return source
    found = sorted({path.parent for pattern in (f"*/{first_component}", f"*/*/{first_component}") for path in source.glob(pattern) if path.is_dir()})
    if len(found) == 1:
        return found[0]
    where = "several places" if found else "nowhere"
    raise PrepareError(f"the DICOM folder {first_component}/ named by classic_path is {where} under {source}; point --source at the folder holding it")


def plan(source: Path, options: dict) -> Plan:
    mapping_path = find_file(source, options["mapping"], ("*filepath_filename-mapping*.csv", "*mapping*.csv", "*mapping*.xlsx"), "--mapping", "file-path mapping table")
    boxes_path = find_file(source, options["boxes"], ("Annotation_Boxes.csv", "*nnotation*oxes*.csv", "*nnotation*oxes*.xlsx"), "--boxes", "annotation boxes table")
    mapping = read_table(mapping_path, ("original_path_and_filename", "classic_path"), "file-path mapping table", dtype=str)
    boxes = read_table(boxes_path, ("Patient ID", "Start Slice", "End Slice"), "annotation boxes table")
    box = {str(row["Patient ID"]).strip(): (int(row["Start Slice"]), int(row["End Slice"])) for _, row in boxes.drop_duplicates("Patient ID").iterrows()}
    selected = mapping[mapping["original_path_and_filename"].fillna("").str.contains(options["sequence"], regex=False)]
    if selected.empty:
        raise PrepareError(f"{mapping_path}: no original_path_and_filename contains {options['sequence']!r}; check --sequence")
    classic = selected["classic_path"].dropna()
    root = image_root(source, Path(classic.iloc[0]).parts[0]) if len(classic) else source
    prefix = root.relative_to(source)
    tasks, issues, counts, unboxed = [], [], {"slices within the margin": 0}, set()
    for row in selected.itertuples(index=False):
        original, classic_path = row.original_path_and_filename, row.classic_path
        patient, number = PATIENT.search(original), SLICE.search(original)
        if not isinstance(classic_path, str) or patient is None or number is None:
            issues.append(Issue("unexpected", "unparseable mapping row", f"{mapping_path.name}:{original}", f"classic_path {classic_path!r}"))
            continue
        if patient[0] not in box:
            unboxed.add(patient[0])
            continue
        start, end = box[patient[0]]
        label = slice_label(int(number[1]), start, end, options["margin"])
        if label is None:
            counts["slices within the margin"] += 1
            continue
        file = (prefix / classic_path).as_posix()
        payload = {
            "file": file,
            "patient": patient[0],
            "slice": int(number[1]),
            "series_uid": Path(classic_path).parent.name,
            "sop_instance_uid": text(getattr(row, "sop_instance_UID", "")),
            "label": label,
        }
        tasks.append(Task(file, payload, label, file))
    issues += [Issue("unexpected", "no annotation box for the patient", patient) for patient in sorted(unboxed)]
    return Plan(tasks, issues, counts, per_class=options["per_class"], seed=options["seed"])


def text(value) -> str:
    """A table cell as text; missing cells (NaN) as ""."""
    return value.strip() if isinstance(value, str) else ""


def locate(source: Path, file: str) -> tuple[Path, list[Issue]]:
    """The file the mapping names, or the one its known typo stands for (reported as ``fixed``)."""
    path = source / file
    if path.is_file():
        return path, []
    for candidate in typo_candidates(path):
        if candidate.is_file():
            return candidate, [Issue("fixed", "TCIA mapping typo: extra leading zero", file, f"read {candidate.name}")]
    raise BadFile("listed file missing", "named by classic_path but absent (also without leading zeros)")


def convert(payload: dict, context: Context) -> TaskResult:
    path, issues = locate(context.source, payload["file"])
    dataset, image, notes = authors_slice(path, context.options["size"], payload["file"])
    out = f"images/{payload['patient']}/{payload['series_uid']}_{Path(payload['file']).stem}.png"
    write_image(context.out / out, image)
    row = {
        "path": out,
        "label": payload["label"],
        "patient_id": payload["patient"],
        "series_uid": payload["series_uid"],
        "sop_instance_uid": payload["sop_instance_uid"] or str(dataset.get("SOPInstanceUID", "")),
        "slice_index": payload["slice"],
        "source": payload["file"],
    }
    return TaskResult(rows=[row], issues=issues + notes)


PREPARER = register_preparer(
    Preparer(
        name="dbc",
        title="Duke Breast Cancer MRI pre-contrast slices, tumour vs not",
        obtain="https://www.cancerimagingarchive.net/collection/duke-breast-cancer-mri/ (TCIA: NBIA Data Retriever with 'Classic Directory Name'; File Path mapping tables and Annotation Boxes saved as CSV)",
        source="a folder holding the manifest-*/Duke-Breast-Cancer-MRI/ DICOM tree, the file-path mapping table and Annotation_Boxes.csv",
        options=(
            Option("mapping", None, "the file-path mapping table (default: *mapping*.csv under --source)", location=True),
            Option("boxes", None, "the annotation boxes table (default: Annotation_Boxes.csv under --source)", location=True),
            Option("sequence", "pre", "slices whose original_path_and_filename contains this text"),
            Option("margin", 5, "negatives lie at least this many slices outside the tumour box", non_negative_int),
            per_class_option(10000),
            SEED_OPTION,
            size_option(0),
        ),
        plan=plan,
        convert=convert,
        columns=("series_uid", "sop_instance_uid", "slice_index", "source"),
        doc="docs/datasets/dbc.md",
    )
)
