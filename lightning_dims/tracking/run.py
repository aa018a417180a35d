"""W&B for one run: the mode, the logger, and fallbacks so a run never fails because of W&B.

W&B mode (``--wandb.mode auto``): the ``WANDB_MODE`` environment variable when set; else online
when an API key is configured (``WANDB_API_KEY`` or a netrc entry for the W&B host); else offline.
An online run whose server cannot be reached within ``init_timeout`` seconds falls back to offline,
and a W&B that cannot start at all to ``metrics.csv`` in the run folder, with a warning.
``--wandb.mode disabled`` logs to ``metrics.csv`` only. The W&B run files live in
``<run folder>/wandb/`` (offline runs upload later with ``wandb sync``); every attempt of a run
continues one W&B history (:mod:`lightning_dims.tracking.history`).
"""

from __future__ import annotations

import netrc
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from lightning_dims.compat import drop_wandb_init_setting, started_wandb_run, wandb_run_offline
from lightning_dims.errors import require
from lightning_dims.tracking.history import continue_history, flush_settings
from lightning_dims.tracking.code import log_package_source
from lightning_dims.utils import digest

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_WANDB_HOST",
    "JOB_TYPE",
    "TAG_FIELDS",
    "WANDB_ID_MAX",
    "WandbOptions",
    "apply_run_config",
    "csv_logger",
    "finish_wandb",
    "make_run_logger",
    "organised",
    "resolve_wandb_mode",
    "server_problem",
    "service_owner_pid",
    "start_wandb_service",
    "wandb_key_configured",
    "wandb_run_config",
    "wandb_run_id",
    "wandb_summary",
]

DEFAULT_WANDB_HOST = "https://api.wandb.ai"
DEFAULT_PROJECT = "lightning-dims"
WANDB_ID_MAX = 64


def wandb_run_id(run_id: str) -> str:
    """A W&B run id for ``run_id`` (W&B allows at most 64 characters): the id itself, or a hashed cut."""
    if len(run_id) <= WANDB_ID_MAX:
        return run_id
    return f"{run_id[: WANDB_ID_MAX - 9]}-{digest(run_id, 8, algorithm='sha1')}"


@dataclass
class WandbOptions:
    """Weights & Biases settings of a run.

    Attributes:
        mode: ``auto`` (online when an API key is configured, else offline; ``WANDB_MODE`` wins),
            ``online``, ``offline`` or ``disabled``.
        project: W&B project; None: ``$WANDB_PROJECT`` (what ``wandb agent`` sets to the sweep's project),
            else ``lightning-dims``.
        entity: W&B team or user; None: the key's default entity.
        group: W&B run group; None: ``$WANDB_RUN_GROUP`` (a local sweep sets it to the sweep file's
            ``name``), else the run's task (``mnist-3v8``), so a task's runs over N, arch and seed are one group.
        job_type: W&B job type; None: ``$WANDB_JOB_TYPE``, else ``fit``.
        tags: W&B run tags, added to the run's dataset, domain, arch and task (and ``$WANDB_TAGS``).
        save_code: save the code that ran: the ``lightning_dims`` source at the installed version in W&B's code
            tab (:mod:`lightning_dims.tracking.code`), and W&B's ``save_code``.
        init_timeout: seconds to wait for the W&B server before falling back to offline.
        artifacts: log the dataset's K_F/d_data, the record and an unfinished run's checkpoint as W&B
            artifacts, and fetch the checkpoint for a resume on a node without it
            (:mod:`lightning_dims.tracking.artifacts`).
    """

    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    save_code: bool = True
    init_timeout: float = 60.0
    artifacts: bool = True


JOB_TYPE = "fit"
"""The default W&B job type of a training run."""

TAG_FIELDS = ("dataset", "domain", "arch", "task")
"""The run's facts that become W&B tags (filters in the W&B UI: ``tags: mnist``)."""


def organised(options: WandbOptions, facts: dict[str, str], environ: dict[str, str] | None = None) -> WandbOptions:
    """``options`` with the W&B group, job type and tags a run gets by default (see :class:`WandbOptions`).

    ``facts``: the run's ``dataset``, ``domain``, ``arch`` and ``task``. A value given explicitly
    wins, then W&B's own environment variables, then the defaults. None of these settings enters
    the run's ``config_hash`` (``wandb.*`` keys change no result).
    """
    environ = os.environ if environ is None else environ
    env_tags = [tag.strip() for tag in environ.get("WANDB_TAGS", "").split(",") if tag.strip()]
    tags = [str(facts[name]) for name in TAG_FIELDS if facts.get(name)] + env_tags + list(options.tags)
    return replace(
        options,
        group=options.group or environ.get("WANDB_RUN_GROUP") or facts.get("task"),
        job_type=options.job_type or environ.get("WANDB_JOB_TYPE") or JOB_TYPE,
        tags=[tag[:64] for tag in dict.fromkeys(tags)],  # W&B tags: at most 64 characters
    )


def wandb_run_config(
    described: Mapping[str, Any], arch: str, seed: int, lr: float, epochs: int | None, config_hash: str
) -> dict[str, object]:
    """The flat W&B config of a ``fit`` run: one meaning per key, whether ``wandb agent`` started it or not.

    ``described``: the data module's ``describe()`` (``dataset``, ``task``, ``domain``, the train
    split's size as ``n_train``, the preprocessing key as ``spec``); ``lr``: the learning rate the
    run's optimizer uses; ``epochs``: ``trainer.max_epochs``.
    """
    return {
        "dataset": described["dataset"],
        "task": described["task"],
        "domain": described["domain"],
        "arch": arch,
        "n_train": described["split_sizes"]["train"],
        "seed": seed,
        "spec": described["preprocessing"]["key"],
        "lr": lr,
        "epochs": epochs,
        "config_hash": config_hash,
    }


def apply_run_config(logger: Any, config: dict[str, object], program: str) -> None:
    """Set ``config`` (:func:`wandb_run_config`) on the W&B run ``logger`` started and summarise ``val/loss`` as its minimum.

    Only on global rank 0 and only for a started ``WandbLogger``; a W&B error is printed as a
    warning: W&B must never fail a run.
    """
    from lightning.pytorch.loggers import WandbLogger

    if rank_zero_only.rank != 0 or not isinstance(logger, WandbLogger) or started_wandb_run(logger) is None:
        return
    try:
        logger.experiment.config.update(config, allow_val_change=True)
        logger.experiment.define_metric("val/loss", summary="min")
    except Exception as error:  # W&B must never fail a run
        print(f"{program}: warning: could not describe the W&B run: {error}", file=sys.stderr)


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


def server_problem(base_url: str, timeout: float) -> str | None:
    """Why the W&B server at ``base_url`` cannot serve a run now (None when it answers within ``timeout`` s).

    Any HTTP answer counts (an error status too: W&B itself then reports what is wrong); no answer
    within ``timeout`` (a server that accepts connections and never replies), a refused connection
    or an unknown host is a problem. This bounds the wait for a dead server by ``init_timeout``:
    W&B's own init can otherwise wait well beyond it.
    """
    import socket
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/healthz", timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"no answer from {base_url} within {timeout:g} s ({reason})"


def start_wandb_service() -> None:
    """Start W&B's service process now (``wandb.setup()``): the runs a warm worker forks later share
    it instead of each starting its own."""
    import wandb

    wandb.setup()


def make_run_logger(options: WandbOptions, run_id: str, save_dir: Path, eager: bool = True):
    """The run's logger: a ``WandbLogger`` writing under ``save_dir/wandb``, never a failed run.

    ``disabled`` mode gives a CSV logger. With ``eager`` the W&B run is started here (call it so on
    global rank 0 only), so problems show before training: an online run whose server cannot be
    reached falls back to offline, and if W&B cannot start at all, to a CSV logger, with a warning.
    """
    mode = resolve_wandb_mode(options.mode)
    save_dir.mkdir(parents=True, exist_ok=True)
    if mode == "disabled":
        return csv_logger(save_dir)
    wandb = require("wandb")  # the wandb extra (wandb.mode disabled needs none)
    from lightning.pytorch.loggers import WandbLogger

    def build(run_mode: str) -> WandbLogger:
        logger = WandbLogger(
            name=run_id,
            id=wandb_run_id(run_id),
            save_dir=str(save_dir),
            project=options.project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            entity=options.entity,
            group=options.group,
            job_type=options.job_type,
            tags=list(options.tags) or None,
            save_code=options.save_code,
            mode=run_mode,
            resume="allow",  # a re-run of the same run id (resume, wandb agent re-run) continues its W&B run
            settings=wandb.Settings(init_timeout=options.init_timeout, silent=True, **flush_settings()),
        )
        drop_wandb_init_setting(logger, "anonymous")  # Lightning passes None; W&B warns the setting is obsolete
        return logger

    def started(logger: WandbLogger) -> str | None:
        """None when the W&B run started, else why not."""
        try:
            _ = logger.experiment
        except Exception as error:  # unreachable server, bad key, id held by a dead process, ...
            return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
        continue_history(logger.experiment)  # a resumed attempt: _step after the earlier ones
        if options.save_code:
            log_package_source(logger.experiment)  # W&B's save_code finds no program in a console script
        return None

    inherited_service = service_owner_pid() not in (None, os.getpid())  # a parent's W&B service
    if eager and mode == "online":
        from concurrent.futures import ThreadPoolExecutor

        base_url = os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)
        with ThreadPoolExecutor(1) as pool:  # start W&B's service while the server is probed: no serial waits
            probe = pool.submit(server_problem, base_url, options.init_timeout)
            wandb.setup()
            problem = probe.result()
        if problem is not None:
            rank_zero_warn(
                f"W&B online run could not start ({problem}); logging offline to {save_dir / 'wandb'} instead "
                "(upload later with `wandb sync`)"
            )
            mode = "offline"
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


def finish_wandb(loggers, exit_code: int = 0, preempting: bool = False) -> None:
    """Close the W&B runs of ``loggers`` (Lightning leaves them open), so a next run starts fresh.

    ``exit_code`` is what W&B records (0: finished; non-zero: failed, or with ``preempting`` a
    preempted run, which ``mark_preempting()`` first tells a W&B sweep to requeue).
    """
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and started_wandb_run(logger) is not None:
            try:
                run = started_wandb_run(logger)
                if preempting:
                    run.mark_preempting()
                run.finish(exit_code=exit_code)
            except Exception as error:  # closing must not fail a finished run
                rank_zero_warn(f"could not close the W&B run: {error}")


def wandb_summary(loggers) -> dict | None:
    """Where the first W&B run among ``loggers`` really went (for the record): entity, project, id,
    sweep id, mode, local folder and URL."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and started_wandb_run(logger) is not None:
            run = started_wandb_run(logger)
            offline = wandb_run_offline(run)
            return {
                "entity": getattr(run, "entity", None) or None,
                "project": getattr(run, "project", None) or logger.name,
                "id": getattr(run, "id", None),
                "sweep_id": getattr(run, "sweep_id", None) or os.environ.get("WANDB_SWEEP_ID") or None,
                "mode": "offline" if offline else "online",
                "dir": os.path.abspath(run.dir) if getattr(run, "dir", None) else None,
                "url": None if offline else getattr(run, "url", None),
            }
    return None
