"""W&B's code tab: the ``lightning_dims`` source that ran, at the installed version.

W&B's own ``save_code`` saves the launching program only when it lies under the working folder
or the git root; ``lightning-dims`` is a console script in the virtual environment, so it saved
nothing. :func:`log_package_source` logs the package's own files (``.py``, and the shipped
``.yaml``/``.json`` configs the runs read) as the run's code artifact (``Run.log_code``), named
after the installed version; W&B stores each distinct file once, so runs of one version share
them. The git commit and diff of the working folder W&B records itself, when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SOURCE_SUFFIXES", "code_artifact_name", "log_package_source", "package_root"]

SOURCE_SUFFIXES = (".py", ".yaml", ".json")
"""The files of the package that decide what a run does: its code and the configs it ships."""


def package_root() -> Path:
    """The installed ``lightning_dims`` folder."""
    import lightning_dims

    return Path(lightning_dims.__file__).resolve().parent


def code_artifact_name() -> str:
    """``source-lightning-dims-<version>``: the code artifact of the installed version."""
    from lightning_dims import __version__

    return f"source-lightning-dims-{__version__}"


def log_package_source(run: Any) -> Any:
    """Log the package's source files into the W&B ``run``'s code tab; the code artifact (None when W&B logged none)."""
    return run.log_code(
        root=str(package_root()),
        name=code_artifact_name(),
        include_fn=lambda path, root=None: path.endswith(SOURCE_SUFFIXES) and "__pycache__" not in path,
    )
