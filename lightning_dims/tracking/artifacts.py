"""W&B artifacts of a run: its dataset's K_F/d_data, its results record, and the checkpoint another node resumes from.

At the end of every attempt (:mod:`lightning_dims.runs.lifecycle`, global rank 0, unless
``--wandb.artifacts false``) the W&B run logs:

========================  ========================  ==================================================
artifact                  type                      content, aliases
========================  ========================  ==================================================
``data-properties-<fp>``  ``dataset-properties``    ``properties.json``: the K_F/d_data measurement of the
                                                    training set, ``<fp>`` its content fingerprint (the
                                                    property cache key: images, labels, split indices,
                                                    preprocessing, estimator options); ``latest``
``record-<run id>``       ``results-record``        ``<run id>.record.json``; ``latest`` and the status
``checkpoint-<run id>``   ``model``                 ``last.ckpt``, only while the run is unfinished
                                                    (interrupted, failed, preempted); ``latest`` and the status
========================  ========================  ==================================================

Lineage: online, the run *uses* the dataset artifact (``run.use_artifact``: the measurement is an
input of every run that trains on that exact training set, one artifact version per content) and
*logs* the record and checkpoint. W&B cannot use an artifact offline (``use_artifact`` raises), so
an offline run logs the dataset artifact as its output instead; in both modes the record and
checkpoint artifacts name the dataset artifact in their metadata (``data_properties_artifact``).
A finished run's checkpoint is not uploaded: its record is the result, and a ResNet-18 checkpoint
alone is about 134 MB, times 972 runs for the paper's grid.

Resuming on another node: :func:`fetch_checkpoint` downloads ``checkpoint-<run id>:latest`` into
the run folder when a resume finds no local ``last.ckpt`` and W&B is online (see
:func:`should_fetch_checkpoint`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from lightning_dims.compat import started_wandb_run, wandb_run_offline
from lightning_dims.records.schema import COMPLETE_STATUSES, RunStatus
from lightning_dims.tracking.run import (
    DEFAULT_PROJECT,
    DEFAULT_WANDB_HOST,
    resolve_wandb_mode,
    server_problem,
    wandb_run_id,
)

__all__ = [
    "CHECKPOINT_TYPE",
    "HOW_SERVED",
    "PROPERTIES_TYPE",
    "RECORD_TYPE",
    "checkpoint_artifact_name",
    "fetch_checkpoint",
    "log_attempt_artifacts",
    "log_run_artifacts",
    "properties_artifact",
    "properties_artifact_name",
    "record_artifact_name",
    "resume_from_artifact",
    "should_fetch_checkpoint",
]

PROPERTIES_TYPE = "dataset-properties"
RECORD_TYPE = "results-record"
CHECKPOINT_TYPE = "model"
HOW_SERVED = ("cached", "compute_seconds")
"""Keys of a measurement that say how this process got it, not what it is: left out of the dataset
artifact, so every run on the same training set logs the same content (one artifact version)."""


def properties_artifact_name(fingerprint: str) -> str:
    return f"data-properties-{fingerprint}"


def record_artifact_name(run_id: str) -> str:
    return f"record-{run_id}"


def checkpoint_artifact_name(run_id: str) -> str:
    return f"checkpoint-{run_id}"


def properties_artifact(properties: dict, folder: Path):
    """The dataset artifact of a K_F/d_data measurement (``properties`` as the data layer returns it)."""
    import wandb

    fingerprint = str(properties["fingerprint"])
    path = folder / "properties.json"
    measured = {key: value for key, value in properties.items() if key not in HOW_SERVED}
    path.write_text(json.dumps(measured, sort_keys=True, indent=1))
    metadata = {"fingerprint": fingerprint} | {
        key: properties[key] for key in ("label_sharpness", "d_data", "n", "dataset", "estimator", "m", "k") if key in properties
    }
    artifact = wandb.Artifact(properties_artifact_name(fingerprint), type=PROPERTIES_TYPE, metadata=metadata)
    artifact.add_file(str(path), name="properties.json")
    return artifact


def log_run_artifacts(
    run: Any,
    *,
    status: RunStatus | str,
    record_file: Path,
    checkpoint: Path | None,
    properties: dict | None,
    config_hash: str,
) -> list[str]:
    """Log the artifacts of one attempt into the W&B ``run`` (named by its id; see the module docstring); their names.

    Never raises: an artifact that cannot be logged is a warning (W&B must not fail a run).
    """
    import wandb

    status = RunStatus(status).value  # W&B aliases and metadata take the plain string (its encoder writes an Enum's name)
    logged: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lightning-dims-artifact-") as scratch:
            lineage: dict[str, str] = {"config_hash": config_hash}
            if properties is not None and properties.get("fingerprint"):
                data = properties_artifact(properties, Path(scratch))
                if wandb_run_offline(run):
                    run.log_artifact(data, aliases=["latest"])
                else:
                    run.use_artifact(data)
                lineage["data_properties_artifact"] = data.name
                logged.append(data.name)
            record = wandb.Artifact(record_artifact_name(run.id), type=RECORD_TYPE, metadata=lineage | {"status": status})
            record.add_file(str(record_file), name=record_file.name)
            run.log_artifact(record, aliases=["latest", status])
            logged.append(record.name)
            if status not in COMPLETE_STATUSES and checkpoint is not None and checkpoint.is_file():
                metadata = lineage | {"status": status}
                model = wandb.Artifact(checkpoint_artifact_name(run.id), type=CHECKPOINT_TYPE, metadata=metadata)
                model.add_file(str(checkpoint), name=checkpoint.name)
                run.log_artifact(model, aliases=["latest", status])
                logged.append(model.name)
    except Exception as error:  # W&B must never fail a run
        rank_zero_warn(f"could not log the run's W&B artifacts ({type(error).__name__}: {error})")
    return logged


def log_attempt_artifacts(loggers, **attempt: Any) -> list[str]:
    """:func:`log_run_artifacts` into the W&B run of every started ``WandbLogger`` in ``loggers``."""
    from lightning.pytorch.loggers import WandbLogger

    logged = []
    for logger in loggers:
        run = started_wandb_run(logger) if isinstance(logger, WandbLogger) else None
        if run is not None:
            logged += log_run_artifacts(run, **attempt)
    return logged


def should_fetch_checkpoint(resuming: bool, local_checkpoint: Path, mode: str, artifacts: bool) -> bool:
    """Fetch ``last.ckpt`` from W&B only for a resume with no local copy, online, with artifacts on."""
    return resuming and artifacts and mode == "online" and not local_checkpoint.is_file()


def fetch_checkpoint(api: Any, project_path: str, run_id: str, destination: Path) -> Path | None:
    """Download ``<project_path>/checkpoint-<run_id>:latest`` to ``destination`` (a ``last.ckpt``); None if there is none.

    ``api`` is a ``wandb.Api``; ``project_path`` is ``entity/project`` (or ``project``).
    """
    import wandb

    name = f"{project_path}/{checkpoint_artifact_name(run_id)}:latest"
    try:
        artifact = api.artifact(name, type=CHECKPOINT_TYPE)
    except (wandb.errors.CommError, ValueError):  # no such artifact: nothing was uploaded for this run
        return None
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=destination.parent) as scratch:
        folder = Path(artifact.download(root=scratch))
        (downloaded,) = folder.glob("*.ckpt")
        downloaded.replace(destination)
    return destination


def resume_from_artifact(options: Any, run_id: str, local_checkpoint: Path, resuming: bool) -> Path | None:
    """Before a resume: fetch ``last.ckpt`` from the run's checkpoint artifact when :func:`should_fetch_checkpoint`.

    ``options`` are the run's :class:`~lightning_dims.tracking.run.WandbOptions`. A server that
    does not answer within ``options.init_timeout`` is a warning (``wandb.Api`` itself would retry for
    much longer), and the run starts as it would without W&B.
    """
    if not should_fetch_checkpoint(resuming, local_checkpoint, resolve_wandb_mode(options.mode), options.artifacts):
        return None
    import wandb

    problem = server_problem(os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST), options.init_timeout)
    if problem is not None:
        rank_zero_warn(f"could not fetch run {run_id!r}'s checkpoint from W&B: {problem}")
        return None
    project = options.project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
    try:
        api = wandb.Api(timeout=int(options.init_timeout))
        entity = options.entity or os.environ.get("WANDB_ENTITY") or api.default_entity
        fetched = fetch_checkpoint(api, f"{entity}/{project}", wandb_run_id(run_id), local_checkpoint)
    except Exception as error:  # no server, no key: resume as without W&B
        rank_zero_warn(f"could not fetch run {run_id!r}'s checkpoint from W&B ({type(error).__name__}: {error})")
        return None
    if fetched is not None:
        rank_zero_warn(f"fetched {fetched} from W&B artifact {checkpoint_artifact_name(wandb_run_id(run_id))}:latest")
    return fetched
