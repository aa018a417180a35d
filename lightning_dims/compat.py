"""Every private or unstable API of a library that lightning-dims relies on, in one module.

Each function here wraps one thing the libraries do not promise to keep (an underscored attribute,
a message format, an internal module) behind a name that says what we need from it. Code
elsewhere calls these, never the private names, so an upgrade that breaks one breaks it here, and
``tests/test_compat.py`` checks every one of them against the installed versions (the attribute
or signature exists and behaves as used) before a run on a cluster finds out.

* Lightning's loops' ``_data_source`` (:func:`stage_data_source`: the loaders passed to
  ``trainer.fit``/``validate``/``test``, which the public ``trainer.val_dataloaders`` holds only while a loop runs);
* Lightning ``WandbLogger._experiment`` (:func:`started_wandb_run`: the run, without starting
  one as the public ``experiment`` does) and ``._wandb_init`` (:func:`drop_wandb_init_setting`);
* Lightning ``LightningCLI._get`` (:func:`cli_config_value`: a config value, inside a subcommand's
  config when the CLI has subcommands);
* W&B ``Settings._offline`` (:func:`wandb_run_offline`) and the sweep-command builders of
  ``wandb.sdk.launch.sweeps.utils`` (:func:`sweep_command_builders`), which ``wandb agent`` uses;
  wandb-workspaces' ``Workspace._spec`` (:func:`workspace_wire_form`: the view as sent to W&B);
* jsonargparse's error messages (:func:`parser_error_line`, :func:`is_parser_error`): it has no
  typed errors that carry the offending key, only a message whose first line is
  ``Parser key "a.b":`` followed by indented details;
* submitit's ``SlurmExecutor._make_submission_file_text``/``_submitit_command_str`` (the sbatch
  text it would submit, :func:`sbatch_text`), ``SlurmExecutor.affinity`` (the check that ``srun``
  is on PATH, bypassed by :func:`preview_slurm_executor_class`) and ``JobEnvironment.USR_SIG``
  (:func:`submitit_requeue_signal_name`);
* W&B ``wandb.sdk.launch.sweeps.utils.parse_sweep_id`` (:func:`parse_sweep_path`) and
  ``wandb.sdk.lib.config_util.dict_from_config_file`` (:func:`read_sweep_parameters`: the
  parameter file ``wandb.agent`` hands a run function);
* CPython's ``atexit._clear``/``atexit._run_exitfuncs`` (:func:`forget_exit_handlers`,
  :func:`run_exit_handlers`): a run forked from a warm worker must not run the worker's exit
  handlers (W&B's service teardown), only its own.

Imports are lazy (inside the functions), so importing this module costs nothing: ``lightning-dims
measure`` and the CLI dispatcher use it without loading Lightning, W&B or submitit.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = [
    "PARSER_KEY_PREFIX",
    "cli_config_value",
    "drop_wandb_init_setting",
    "forget_exit_handlers",
    "is_parser_error",
    "parse_sweep_path",
    "parser_error_line",
    "preview_slurm_executor_class",
    "read_sweep_parameters",
    "run_exit_handlers",
    "sbatch_text",
    "stage_data_source",
    "started_wandb_run",
    "submitit_requeue_signal_name",
    "sweep_command_builders",
    "wandb_flush_settings",
    "wandb_run_offline",
    "workspace_wire_form",
]

# -- Lightning ------------------------------------------------------------------------------------


def stage_data_source(trainer: Any, stage: str) -> Any | None:
    """What Lightning reads a stage's data from (``<loop>._data_source.instance``): the loaders passed to
    ``trainer.fit``/``validate``/``test``, the datamodule or the LightningModule; None when nothing was given.

    ``stage`` is ``train``, ``val`` (the running ``trainer.validate``'s source, else ``fit``'s) or ``test``.
    """
    if stage == "train":
        loops = [trainer.fit_loop]
    elif stage == "val":
        loops = [trainer.validate_loop, trainer.fit_loop.epoch_loop.val_loop]
        if not trainer.validating:
            loops.reverse()
    else:
        loops = [trainer.test_loop]
    return next((loop._data_source.instance for loop in loops if loop._data_source.instance is not None), None)


def started_wandb_run(logger: Any) -> Any | None:
    """The W&B run a ``WandbLogger`` has already started, or None (never starts one, unlike ``logger.experiment``)."""
    return getattr(logger, "_experiment", None)


def drop_wandb_init_setting(logger: Any, name: str) -> None:
    """Remove ``name`` from the keyword arguments a ``WandbLogger`` will pass to ``wandb.init`` (before it starts)."""
    logger._wandb_init.pop(name, None)


def cli_config_value(cli: Any, config: Any, key: str, default: Any = None) -> Any:
    """``config[key]`` of a ``LightningCLI``, inside the running subcommand's config when it has subcommands."""
    from lightning.pytorch.cli import LightningCLI

    return LightningCLI._get(cli, config, key, default=default)


# -- W&B ------------------------------------------------------------------------------------------


def wandb_run_offline(run: Any) -> bool:
    """True when the W&B ``run`` logs offline (to be uploaded with ``wandb sync``)."""
    settings = run.settings
    return bool(getattr(settings, "_offline", False)) or getattr(settings, "mode", "") in ("offline", "dryrun")


def sweep_command_builders() -> tuple[Callable[[list[str]], list[str]], Callable[[dict], dict]]:
    """``(create_sweep_command, create_sweep_command_args)``: how ``wandb agent`` builds a grid point's command.

    ``create_sweep_command(command)`` fills ``${envvar:NAME}``; ``create_sweep_command_args({"args":
    {name: {"value": v}}})`` gives each macro's tokens (``{"args": ["--name=<str(v)>", ...], ...}``).
    """
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    return create_sweep_command, create_sweep_command_args


def parse_sweep_path(sweep_id: str, entity: str | None = None, project: str | None = None) -> tuple[dict, str | None]:
    """``[ENTITY/[PROJECT/]]SWEEP_ID`` split as ``wandb agent`` splits it: ``({entity, project, name}, problem or None)``."""
    from wandb.sdk.launch.sweeps.utils import parse_sweep_id

    parts = {"entity": entity, "project": project, "name": sweep_id}
    return parts, parse_sweep_id(parts)


def read_sweep_parameters(path: str) -> dict:
    """The parameters ``wandb.agent`` wrote for one run (``WANDB_SWEEP_PARAM_PATH``), as ``{name: value}``."""
    from wandb.sdk.lib.config_util import dict_from_config_file

    return dict_from_config_file(path, must_exist=True) or {}


def workspace_wire_form(workspace: Any) -> dict:
    """A ``wandb_workspaces`` workspace exactly as it would be sent to W&B (its private ``_spec``), no server needed."""
    return workspace._spec


# -- jsonargparse ---------------------------------------------------------------------------------

PARSER_KEY_PREFIX = 'Parser key "'
"""How jsonargparse starts the message of an error about one key: ``Parser key "a.b":``."""


def is_parser_error(error: BaseException) -> bool:
    """jsonargparse's ``ArgumentError`` (an ``argparse.ArgumentError`` subclass) or argparse's own."""
    return isinstance(error, argparse.ArgumentError) or type(error).__name__ == "ArgumentError"


def parser_error_line(error: BaseException) -> str:
    """The message of ``error`` on one line; jsonargparse's ``Parser key "a.b":`` + details as ``a.b: detail; detail``."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    head = lines[0]
    if head.startswith(PARSER_KEY_PREFIX) and head.endswith('":') and len(lines) > 1:
        details = [line for line in lines[1:] if not line.startswith("- ")][:2] or lines[1:2]
        given = next((line for line in lines[2:] if line.startswith("Given value:")), None)
        if given and given not in details:
            details.append(given)
        return f"{head[len(PARSER_KEY_PREFIX):-2]}: " + "; ".join(details)
    return head if len(lines) == 1 else "; ".join(lines[:3])


# -- submitit -------------------------------------------------------------------------------------


def preview_slurm_executor_class() -> type:
    """submitit's ``SlurmExecutor`` minus its check that ``srun`` is on PATH (to show a script anywhere)."""
    from submitit import SlurmExecutor

    class PreviewExecutor(SlurmExecutor):
        @classmethod
        def affinity(cls) -> int:
            return 1

    return PreviewExecutor


def sbatch_text(executor: Any, array_size: int) -> str:
    """The sbatch script a submitit ``SlurmExecutor`` would submit for an array of ``array_size`` tasks."""
    executor.parameters["map_count"] = array_size  # what submitit sets for an array submission
    return executor._make_submission_file_text(executor._submitit_command_str, "preview")


def submitit_requeue_signal_name() -> str:
    """The signal submitit checkpoints and requeues on, without ``SIG`` (``USR2`` unless ``SUBMITIT_PREEMPT_SIGNAL`` says otherwise)."""
    from submitit import JobEnvironment

    return JobEnvironment.USR_SIG


def wandb_flush_settings(interval_s: float) -> dict[str, Any]:
    """``wandb.Settings`` keywords that flush a run's ``.wandb`` file every ``interval_s`` seconds
    (W&B's experimental ``x_transaction_log_flush_interval``, default 15 s), or ``{}`` when the
    installed wandb has no such setting (then a run killed early may leave only the file's header)."""
    import wandb

    if "x_transaction_log_flush_interval" not in getattr(wandb.Settings, "model_fields", {}):
        return {}
    return {"x_transaction_log_flush_interval": interval_s}


# -- CPython --------------------------------------------------------------------------------------


def forget_exit_handlers() -> None:
    """Drop every registered ``atexit`` handler (a forked child inherits its parent's)."""
    import atexit

    atexit._clear()


def run_exit_handlers() -> None:
    """Run the ``atexit`` handlers registered since :func:`forget_exit_handlers`, as interpreter exit would."""
    import atexit

    atexit._run_exitfuncs()
