"""Who a run is: its run id, and the ``config_hash`` of everything that can change its results.

Run ids name the run folder, the record and the W&B run: one identity. They hold only
``[A-Za-z0-9._-]`` (:func:`sanitize_run_id`) and come from, in this order (:func:`resolve_run_id`):
``--run_id``; the launching process (:data:`RUN_ID_ENV`: DDP workers Lightning starts share their
launcher's id and folder); ``wandb agent`` (``WANDB_RUN_ID`` when ``WANDB_SWEEP_ID`` is set: the
agent's run id, so a re-run of a preempted W&B run finds its folder and checkpoint); a
multi-process launcher (torchrun's ``TORCHELASTIC_RUN_ID``, or without ``--rdzv-id`` the rendezvous'
store and the command line; SLURM ``srun``'s job and step ids: every rank derives the same id); or a new readable, unique id (:func:`new_run_id`).

The config hash: the resolved fit config, flattened to dotted keys (``model.lr``,
``trainer.max_epochs``), without the keys that cannot change a result (:data:`IGNORED_KEYS`,
:data:`IGNORED_PREFIXES`: folders, ids, checkpoint to resume, W&B settings, progress bars, data
loader workers, where the data lives), plus ``data.fingerprint``: the identity of the data itself
(file contents for file datasets). ``config_hash`` is the first 16 hex digits of the SHA-256 of its
canonical JSON. Two runs with equal hashes train the same network on the same images; a resume
whose hash differs from its checkpoint's is refused (:func:`differing_keys` names why).
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from lightning_dims.utils import canonical_json, digest, flatten

__all__ = [
    "ABSENT_WHEN_UNSET",
    "DERIVED_KEYS",
    "IGNORED_KEYS",
    "IGNORED_PREFIXES",
    "RENDEZVOUS_KEYS",
    "RUN_ID_ENV",
    "SHOWN_CHANGES",
    "agent_run_id",
    "changes_text",
    "config_hash",
    "differing_keys",
    "flatten_config",
    "is_class_spec",
    "launcher_key",
    "new_run_id",
    "resolve_run_id",
    "result_config",
    "sanitize_run_id",
    "short_hash",
]

RUN_ID_ENV = "LIGHTNING_DIMS_RUN_ID"
"""Carries the run id from the launching process to DDP worker processes (same folder on every rank)."""

IGNORED_KEYS = frozenset(
    {
        "config",  # the --config files themselves: their values are in the config
        "print_config",
        "run_dir",
        "run_id",
        "results_dir",
        "ckpt_path",
        "test_best",  # adds test_best to the record, changes nothing else
        "data_properties",  # adds K_F/d_data to the record, changes nothing else
        "data.data_root",  # where the data is; what it is goes in data.fingerprint
        "data.download",
        "data.num_workers",
        "trainer.default_root_dir",
        "trainer.logger",
        "trainer.enable_progress_bar",
        "trainer.enable_model_summary",
        "trainer.enable_checkpointing",
        "trainer.log_every_n_steps",
        "trainer.enable_autolog_hparams",
        "trainer.num_sanity_val_steps",
    }
)
"""Config keys that cannot change a run's results (left out of ``config_hash``)."""

IGNORED_PREFIXES = ("wandb.",)

ABSENT_WHEN_UNSET = frozenset({"optimizer", "lr_scheduler"})
"""Keys left out of ``config_hash`` while unset (None): LightningCLI's ``--optimizer``/``--lr_scheduler``.
Unset, the model's own optimizer (the paper's Adam) trains, as before these options existed, so
runs without them keep their hash; set, they are part of it like any other setting."""

DERIVED_KEYS = ("model.lr", "data.batch_size", "trainer.precision", "seed_everything")
"""Keys whose default is derived from the arch, dataset or hardware (the paper preset, mixed
precision on CUDA, the seed). Runs of one protocol may differ in them; ``report`` knows."""


def sanitize_run_id(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``-``; no leading dots."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    if not cleaned:
        raise ValueError(f"run_id {text!r} has no usable characters: use letters, digits, '.', '_' or '-'")
    return cleaned


def new_run_id(arch: str, dataset: str, train_size: int, seed: int, now: float | None = None) -> str:
    """``<arch>-<dataset>-n<N>-s<seed>-<UTC yyyymmdd-hhmmss>-<4 hex>``: readable and unique."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return sanitize_run_id(f"{arch}-{dataset}-n{train_size}-s{seed}-{stamp}-{secrets.token_hex(2)}")


def agent_run_id(environ: Mapping[str, str]) -> str | None:
    """The ``wandb agent`` run this process is (``WANDB_RUN_ID`` under ``WANDB_SWEEP_ID``), or None."""
    if environ.get("WANDB_SWEEP_ID") and environ.get("WANDB_RUN_ID"):
        return environ["WANDB_RUN_ID"]
    return None


RENDEZVOUS_KEYS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_STEP_ID")
"""What every rank of one torchrun launch sees alike when it has no ``--rdzv-id``: the store its
rendezvous agreed on (address and port, the port drawn afresh by each launch), the world size and
the SLURM job around it."""


def short_hash(*parts: object) -> str:
    """8 hex digits of the SHA-1 of ``parts`` (canonical JSON)."""
    return digest(canonical_json(list(parts)), 8, algorithm="sha1")


def launcher_key(environ: Mapping[str, str], argv: Sequence[str] = ()) -> str | None:
    """What every rank of one multi-process launch shares: torchrun's run id, or SLURM's job and step.

    torchrun without ``--rdzv-id`` sets ``TORCHELASTIC_RUN_ID=none`` on every rank (c10d rendezvous,
    or ``--standalone`` on an older torch): the key is then a hash of the rendezvous' store
    (:data:`RENDEZVOUS_KEYS`) and the job's command line ``argv``, the same on every rank of the
    launch, and different for the next launch (a new store port). An elastic restart rendezvouses
    anew and so gets a new id: pass ``--rdzv-id`` for restarts that resume the same run.
    None for a single process (a single-task SLURM job or a plain ``python`` gets a fresh id).
    """
    world = environ.get("WORLD_SIZE") or environ.get("SLURM_NTASKS") or "1"
    if not world.isdigit() or int(world) < 2:
        return None
    torchrun = environ.get("TORCHELASTIC_RUN_ID", "")
    if torchrun and torchrun.lower() != "none":
        return f"torchrun{digest(torchrun, 8, algorithm='sha1')}"
    if torchrun and environ.get("MASTER_ADDR") and environ.get("MASTER_PORT"):
        return f"torchrun{short_hash(*(environ.get(key, '') for key in RENDEZVOUS_KEYS), list(argv))}"
    if environ.get("SLURM_JOB_ID"):
        job = environ["SLURM_JOB_ID"] + (f"_{environ['SLURM_ARRAY_TASK_ID']}" if environ.get("SLURM_ARRAY_TASK_ID") else "")
        return f"slurm{job}" + (f".{environ['SLURM_STEP_ID']}" if environ.get("SLURM_STEP_ID") else "")
    return None


def resolve_run_id(
    requested: str | None, default: str, environ: Mapping[str, str] | None = None, argv: Sequence[str] | None = None
) -> str:
    """The run id (see the module docstring for the order); always sanitised.

    ``default`` is a fresh id; under a multi-process launcher its random suffix is replaced by the
    launcher's key so that every rank arrives at the same id. ``argv``: the command line every
    rank was started with (default ``sys.argv[1:]``), part of torchrun's key without a rendezvous id.
    """
    environ = os.environ if environ is None else environ
    argv = sys.argv[1:] if argv is None else argv
    if requested:
        return sanitize_run_id(requested)
    if environ.get(RUN_ID_ENV):
        return sanitize_run_id(environ[RUN_ID_ENV])
    if (agent := agent_run_id(environ)) is not None:
        return sanitize_run_id(agent)
    if (key := launcher_key(environ, argv)) is not None:
        return sanitize_run_id(f"{default.rsplit('-', 3)[0]}-{key}")
    return default


def is_class_spec(value: Mapping[str, Any]) -> bool:
    """True for a jsonargparse ``class_path``/``init_args`` mapping, which the config hash keeps whole."""
    return bool({"class_path", "init_args"} & set(value))


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Nested config mappings as dotted keys; lists (e.g. ``trainer.callbacks``) and class specs stay values."""
    return flatten(config, keep=is_class_spec)


def result_config(config: Mapping[str, Any], data_fingerprint: str | None) -> dict[str, Any]:
    """The dotted-key config that ``config_hash`` covers: ``config`` minus ignored keys, plus the data's identity."""
    flat = flatten_config(config)
    kept = {
        key: value
        for key, value in sorted(flat.items())
        if key not in IGNORED_KEYS and not key.startswith(IGNORED_PREFIXES)
        and not (key in ABSENT_WHEN_UNSET and value is None)
    }
    if data_fingerprint is not None:
        kept["data.fingerprint"] = data_fingerprint
    return kept


def config_hash(config: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``config``'s canonical JSON."""
    return digest(canonical_json(dict(config)), 16)


SHOWN_CHANGES = 6
"""Differing keys an error message names before ``and N more``."""


def changes_text(changes: list[str], shown: int = SHOWN_CHANGES) -> str:
    """The first ``shown`` of :func:`differing_keys`' lines joined by ``; ``, then ``; and N more``."""
    more = len(changes) - shown
    return "; ".join(changes[:shown]) + (f"; and {more} more" if more > 0 else "")


def differing_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for every key whose value differs (missing keys show as ``<unset>``)."""
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, "<unset>"), new.get(key, "<unset>")
        if canonical_json(before) != canonical_json(after):
            changes.append(f"{key}: {canonical_json(before)} -> {canonical_json(after)}")
    return changes
