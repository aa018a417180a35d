"""Finding the files of an official download and reading its label tables, with errors that name the fix."""

from __future__ import annotations

from pathlib import Path

from lightning_dims.prepare.registry import PrepareError

__all__ = ["find_file", "listed_file", "read_table", "relative", "source_folder", "within_download"]


def find_file(source: Path, given: str | None, patterns: tuple[str, ...], flag: str, what: str) -> Path:
    """``given`` (relative to ``source`` or absolute), else the one file under ``source`` matching a pattern.

    The patterns are tried in order (``Path.rglob`` globs); the first that matches exactly one file wins.
    """
    if given is not None:
        path = Path(given).expanduser()
        path = path if path.is_absolute() or path.exists() else source / path
        if not path.is_file():
            raise PrepareError(f"{flag} {given}: no such file ({what})")
        return path
    for pattern in patterns:
        found = sorted(path for path in source.rglob(pattern) if path.is_file() and not path.name.startswith("."))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise PrepareError(f"several files match {pattern!r} under {source} ({', '.join(map(str, found[:3]))}); choose one with {flag} FILE")
    raise PrepareError(f"no {what} found under {source} (looked for {', '.join(patterns)}); pass {flag} FILE")


def read_table(path: Path, required: tuple[str, ...], what: str, **read_options):
    """A CSV (or, with openpyxl, XLSX) table as a DataFrame holding the ``required`` columns."""
    import pandas as pd

    try:
        if path.suffix.lower() in (".xlsx", ".xls"):
            frame = pd.read_excel(path, **read_options)
        else:
            frame = pd.read_csv(path, **read_options)
    except ImportError as error:
        raise PrepareError(f"{path}: reading spreadsheets needs openpyxl ({error}); pip install openpyxl, or save the sheet as CSV") from None
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise PrepareError(f"{path}: cannot read the {what} ({type(error).__name__}: {error})") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise PrepareError(f"{path}: the {what} lacks column(s) {missing}; columns found: {list(frame.columns)[:12]}")
    return frame


def relative(path: Path, source: Path) -> str:
    """``path`` relative to ``source`` (posix), or as given when outside it."""
    try:
        return Path(path).relative_to(source).as_posix()
    except ValueError:
        return str(path)


def source_folder(source: str | Path) -> Path:
    path = Path(source).expanduser()
    if not path.is_dir():
        raise PrepareError(f"--source {source}: no such folder; point it at the dataset's download")
    return path


def listed_file(table: Path, listed: str) -> Path:
    """A path listed in an official table (``CheXpert-v1.0/train/...``, ``MURA-v1.1/train/...``) -> the file.

    Such paths start with the download's own folder name, the folder holding the table; a path
    that does not is taken relative to the table's folder.
    """
    parts = Path(listed).parts
    if parts and parts[0] == table.parent.name:
        return table.parent.joinpath(*parts[1:])
    return table.parent / listed


def within_download(table: Path, listed: str) -> str:
    """A listed path without its leading download-folder name (``train/patient00001/...``)."""
    parts = Path(listed).parts
    return Path(*parts[1:]).as_posix() if parts and parts[0] == table.parent.name else Path(listed).as_posix()
