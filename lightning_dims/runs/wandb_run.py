"""Run identity and folders, W&B mode and logger, and the per-run config file.

Every ``lightning-dims fit`` run owns one folder ``<run_dir>/<run_id>/`` holding its
``config.yaml`` (the parsed CLI config), ``checkpoints/`` (``last.ckpt`` and the best-val one),
``wandb/`` (the W&B run files, offline runs syncable with ``wandb sync``) and, unless
``--results_dir`` says otherwise, ``<run_id>.record.json``. Runs sharing a project or root
folder never clash; resuming a run (same ``--run_id``) reuses its folder and writes a changed
config as ``config.v2.yaml`` instead of overwriting the first.

W&B mode (``--wandb.mode auto``): the ``WANDB_MODE`` environment variable when set; else online
when an API key is configured (``WANDB_API_KEY`` or a netrc entry for the W&B host); else offline.
An online run whose server cannot be reached within ``init_timeout`` seconds falls back to offline,
and a W&B that cannot start at all to ``metrics.csv`` in the run folder, with a warning: a run
never fails because of W&B. ``--wandb.mode disabled`` logs to ``metrics.csv`` only.
"""

from __future__ import annotations

import hashlib
import json
import netrc
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_warn

RUN_ID_ENV = "LIGHTNING_DIMS_RUN_ID"
"""Carries the run id from the launching process to DDP worker processes (same folder on every rank)."""

WANDB_ID_MAX = 64
DEFAULT_WANDB_HOST = "https://api.wandb.ai"


@dataclass
class WandbOptions:
    """Weights & Biases settings of a run.

    Attributes:
        mode: ``auto`` (online when an API key is configured, else offline; ``WANDB_MODE`` wins),
            ``online``, ``offline`` or ``disabled``.
        project: W&B project.
        entity: W&B team or user; None: the key's default entity.
        group: W&B run group (e.g. a sweep name).
        tags: W&B run tags.
        init_timeout: seconds to wait for the W&B server before falling back to offline.
    """

    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    project: str = "lightning-dims"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    init_timeout: float = 60.0


def sanitize_run_id(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``-``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not cleaned:
        raise ValueError(f"run_id {text!r} has no usable characters: use letters, digits, '.', '_' or '-'")
    return cleaned


def new_run_id(arch: str, dataset: str, train_size: int, seed: int, now: float | None = None) -> str:
    """``<arch>-<dataset>-n<N>-s<seed>-<UTC yyyymmdd-hhmmss>-<4 hex>``: readable and unique."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return sanitize_run_id(f"{arch}-{dataset}-n{train_size}-s{seed}-{stamp}-{secrets.token_hex(2)}")


def resolve_run_id(requested: str | None, default: str) -> str:
    """The run id: the one asked for, else the launcher's (DDP workers), else ``default``."""
    if requested:
        return sanitize_run_id(requested)
    return os.environ.get(RUN_ID_ENV) or default


def wandb_run_id(run_id: str) -> str:
    """A W&B run id for ``run_id`` (W&B allows at most 64 characters): the id itself, or a hashed cut."""
    if len(run_id) <= WANDB_ID_MAX:
        return run_id
    return f"{run_id[: WANDB_ID_MAX - 9]}-{hashlib.sha1(run_id.encode()).hexdigest()[:8]}"


def wandb_key_configured(environ: dict[str, str] | None = None, netrc_path: str | None = None) -> bool:
    """True when W&B can authenticate: ``WANDB_API_KEY`` or a netrc password for the W&B host."""
    environ = os.environ if environ is None else environ
    if environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)).hostname or ""
    path = netrc_path or environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def resolve_wandb_mode(requested: str, environ: dict[str, str] | None = None) -> str:
    """``online``, ``offline`` or ``disabled`` for a requested mode (rules in the module docstring)."""
    environ = os.environ if environ is None else environ
    if requested != "auto":
        return requested
    env_mode = environ.get("WANDB_MODE", "").strip().lower()
    if env_mode in ("online", "run"):
        return "online"
    if env_mode in ("offline", "dryrun"):
        return "offline"
    if env_mode == "disabled":
        return "disabled"
    return "online" if wandb_key_configured(environ) else "offline"


def service_owner_pid(environ: dict[str, str] | None = None) -> int | None:
    """The pid that started the W&B service this process talks to (``WANDB_SERVICE``), None if none.

    W&B writes ``WANDB_SERVICE`` as ``<protocol version>-<pid>-<transport>-<address>``; an unreadable
    value counts as another process's service (which we must not tear down).
    """
    value = (os.environ if environ is None else environ).get("WANDB_SERVICE")
    if not value:
        return None
    try:
        return int(value.split("-")[1])
    except (IndexError, ValueError):
        return -1


def csv_logger(save_dir: Path):
    """Metrics as ``metrics.csv`` directly in the run folder (no W&B)."""
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(save_dir=str(save_dir), name="", version="")


def make_run_logger(options: WandbOptions, run_id: str, save_dir: Path, eager: bool = True):
    """The run's logger: a ``WandbLogger`` writing under ``save_dir/wandb``, never a failed run.

    ``disabled`` mode gives a CSV logger. With ``eager`` the W&B run is started here (call it so on
    global rank 0 only), so problems show before training: an online run whose server cannot be
    reached falls back to offline, and if W&B cannot start at all, to a CSV logger, with a warning.
    """
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    mode = resolve_wandb_mode(options.mode)
    save_dir.mkdir(parents=True, exist_ok=True)
    if mode == "disabled":
        return csv_logger(save_dir)

    def build(run_mode: str) -> WandbLogger:
        logger = WandbLogger(
            name=run_id,
            id=wandb_run_id(run_id),
            save_dir=str(save_dir),
            project=options.project,
            entity=options.entity,
            group=options.group,
            tags=list(options.tags) or None,
            mode=run_mode,
            settings=wandb.Settings(init_timeout=options.init_timeout, silent=True),
        )
        logger._wandb_init.pop("anonymous", None)  # Lightning passes None; W&B warns the setting is obsolete
        return logger

    def started(logger: WandbLogger) -> str | None:
        """None when the W&B run started, else why not."""
        try:
            _ = logger.experiment
        except Exception as error:  # unreachable server, bad key, id held by a dead process, ...
            return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
        return None

    inherited_service = service_owner_pid() not in (None, os.getpid())  # a parent's W&B service
    logger = build(mode)
    if not eager or (problem := started(logger)) is None:
        return logger
    if mode == "online":
        rank_zero_warn(
            f"W&B online run could not start ({problem}); logging offline to {save_dir / 'wandb'} instead "
            "(upload later with `wandb sync`)"
        )
        if not inherited_service:
            wandb.teardown()  # our own W&B service still holds the failed run's id: start a fresh one
        logger = build("offline")
        if (problem := started(logger)) is None:
            return logger
    rank_zero_warn(f"W&B could not start ({problem}); logging metrics to {save_dir / 'metrics.csv'} instead")
    return csv_logger(save_dir)


def finish_wandb(loggers) -> None:
    """Close the W&B runs of ``loggers`` (Lightning leaves them open), so a next run starts fresh."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            try:
                logger._experiment.finish()
            except Exception as error:  # closing must not fail a finished run
                rank_zero_warn(f"could not close the W&B run: {error}")


def wandb_summary(loggers) -> dict | None:
    """Project, id, mode and local folder of the first W&B run among ``loggers`` (for the record)."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            run = logger._experiment
            offline = bool(getattr(run.settings, "_offline", False)) or getattr(run.settings, "mode", "") == "offline"
            return {
                "project": logger.name,
                "id": getattr(run, "id", None),
                "mode": "offline" if offline else "online",
                "dir": getattr(run, "dir", None),
                "url": None if offline else getattr(run, "url", None),
            }
    return None


def free_config_name(folder: Path, content: str, name: str = "config.yaml") -> tuple[str, bool]:
    """(file name, overwrite) for saving ``content`` in ``folder`` without losing an earlier config.

    The name itself when free; the same name (rewriting identical bytes) when it already holds
    ``content``; else the first free ``config.v2.yaml``, ``config.v3.yaml``, ...
    """
    path = folder / name
    if not path.exists():
        return name, False
    if path.read_text() == content:
        return name, True
    stem, suffix = os.path.splitext(name)
    version = 2
    while (folder / f"{stem}.v{version}{suffix}").exists():
        if (folder / f"{stem}.v{version}{suffix}").read_text() == content:
            return f"{stem}.v{version}{suffix}", True
        version += 1
    return f"{stem}.v{version}{suffix}", False


class RunConfigSaver(SaveConfigCallback):
    """Saves the CLI config into the run folder (never over a different earlier one) and into W&B."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.already_saved and self.save_to_log_dir:
            log_dir, choice = Path(trainer.log_dir), None  # trainer.log_dir is a collective call: all ranks
            if trainer.is_global_zero:
                choice = free_config_name(log_dir, self.parser.dump(self.config, skip_none=False))
            self.config_filename, self.overwrite = trainer.strategy.broadcast(choice)
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        config = self.parser.dump(self.config, skip_none=False, format="json")
        for logger in trainer.loggers:
            logger.log_hyperparams({"cli": json.loads(config)})
