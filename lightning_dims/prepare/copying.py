"""Datasets the authors used as downloaded (CheXpert, MURA, OAI crops): copy each image unchanged.

The file is decoded fully first (a file that does not decode is reported, not copied), then copied
byte for byte, so the pixels are exactly the download's. Gray conversion and max-scaling happen at
load time, under the measuring spec.
"""

from __future__ import annotations

from lightning_dims.prepare.imaging import copy_verified
from lightning_dims.prepare.registry import Context
from lightning_dims.prepare.tasks import BadFile, TaskResult

__all__ = ["convert_copy", "copy_task"]


def copy_task(source: str, row: dict) -> dict:
    """The payload of a copy task: the file (relative to ``--source``) and its finished manifest row."""
    return {"file": source, "row": row}


def convert_copy(payload: dict, context: Context) -> TaskResult:
    """Copy ``payload["file"]`` to ``payload["row"]["path"]`` under the output folder."""
    source = context.source / payload["file"]
    if not source.is_file():
        raise BadFile("listed file missing", "named in the label table but absent from the download")
    copy_verified(source, context.out / payload["row"]["path"])
    return TaskResult(rows=[payload["row"]])
