"""Reading an offline W&B run file (``run-<id>.wandb``) in tests, without a W&B server.

The file format and its reader, :func:`~lightning_dims.tracking.history.record_payloads`, are
in :mod:`lightning_dims.tracking.history`; each record is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from lightning_dims.tracking.history import record_payloads


def item_key(item) -> str:
    """A history/summary/config item's key; nested keys (W&B splits ``a/b`` in summaries) joined by ``/``."""
    return item.key or "/".join(item.nested_key)


def offline_run(folder: str | Path) -> dict:
    """The one offline run below ``folder``, as the W&B server will hold it after ``wandb sync``.

    ``{"history": [{key: value}], "config": {key: value}, "summary": {key: value}, "metrics": {name:
    define_metric summaries, e.g. {"val/loss": ["min"]}}, "files": [path in the run's files folder],
    "run": RunRecord, "file": the .wandb file, "files_dir": Path}``;
    the summary applies the run's summary updates in order (W&B's own: the last logged value of each
    history key, and explicit ``summary.update`` calls).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = Path(folder).rglob("offline-run-*/run-*.wandb")
    history, config, summary, metrics, files, run = [], {}, {}, {}, [], None
    for payload in record_payloads(path):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "config":
            for item in record.config.update:
                config[item_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                summary[item_key(item)] = json.loads(item.value_json)
            for item in record.summary.remove:
                summary.pop(item_key(item), None)
        elif kind == "metric":
            kinds = record.metric.summary
            chosen = [name for name in ("min", "max", "mean", "last", "best") if getattr(kinds, name, False)]
            metrics[record.metric.name or record.metric.glob_name] = chosen
        elif kind == "files":
            files += [item.path for item in record.files.files]
        elif kind == "run":
            run = record.run
    return {
        "history": history,
        "config": config,
        "summary": summary,
        "metrics": metrics,
        "files": files,
        "run": run,
        "file": path,
        "files_dir": path.parent / "files",
    }


class OfflineFile:
    """A file an offline run will upload, with ``wandb.apis.public.File``'s ``name`` and ``download``."""

    def __init__(self, source: Path, name: str):
        self.source, self.name = source, name

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False, api=None):
        """As ``File.download``: ``root/<name>``, refused if it exists unless ``replace``/``exist_ok``; an open file."""
        path = Path(root) / self.name
        if path.exists() and not replace:
            if exist_ok:
                return open(path)
            raise ValueError("File already exists, pass replace=True to overwrite or exist_ok=True to leave it as is")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.source.read_bytes())
        return open(path)


class OfflineRunView:
    """An offline run as ``wandb.apis.public.Run`` shows it after ``wandb sync``: ``id``, ``state``, ``files()``."""

    def __init__(self, folder: str | Path):
        settled_records(next(Path(folder).rglob("offline-run-*/run-*.wandb")))  # finish() may return before the file is whole
        self.offline = offline_run(folder)
        run = self.offline["run"]
        self.id, self.project, self.sweep_id = run.run_id, run.project, run.sweep_id or None
        exits = [payload for payload in record_payloads(self.offline["file"]) if self._exit_code(payload) is not None]
        code = self._exit_code(exits[-1]) if exits else None
        self.state = "crashed" if code is None else ("finished" if code == 0 else "failed")  # the server's mapping

    @staticmethod
    def _exit_code(payload: bytes) -> int | None:
        from wandb.proto import wandb_internal_pb2 as pb

        record = pb.Record()
        record.ParseFromString(payload)
        return record.exit.exit_code if record.WhichOneof("record_type") == "exit" else None

    def files(self, names: list[str] | None = None, pattern: str | None = None, per_page: int = 50) -> list[OfflineFile]:
        if pattern is not None:
            raise NotImplementedError("this stand-in serves files by exact names only")
        wanted = [path for path in self.offline["files"] if not names or path in names]
        return [OfflineFile(self.offline["files_dir"] / path, path) for path in dict.fromkeys(wanted)]


class OfflineApi:
    """``wandb.Api`` over offline run folders, for the calls ``report --from-wandb`` makes (no W&B server here).

    ``runs(path, filters)`` serves the runs logged to ``path``'s project, with the filters W&B's
    sweep page sends (``{"sweep": id}``, also inside ``$and``) and ``{"state": s}``; any other
    filter is refused rather than ignored. ``calls`` records every ``runs`` call.
    """

    def __init__(self, folders):
        self.views = [OfflineRunView(folder) for folder in folders]
        self.calls: list[tuple[str, dict]] = []

    def runs(self, path=None, filters=None, order="+created_at", per_page=50, include_sweeps=False, lazy=True):
        filters = dict(filters or {})
        self.calls.append((path, filters))
        conditions = filters.pop("$and", []) + [{key: value} for key, value in filters.items()]
        _, project = path.split("/")
        views = [view for view in self.views if view.project == project]
        for condition in conditions:
            ((key, value),) = condition.items()
            if key == "sweep":
                views = [view for view in views if view.sweep_id == value]
            elif key == "state":
                views = [view for view in views if view.state == value]
            else:
                raise NotImplementedError(f"this stand-in does not filter on {key!r}")
        return views


def settled_offline_run(folder: str | Path, *keys: str, timeout: float = 30.0) -> dict:
    """:func:`offline_run` once every one of ``keys`` is in its summary or history.

    W&B's core process may still be writing the run file after ``run.finish()`` returns when
    several runs share one process (as tests do), so read until the last logged keys are there.
    """

    deadline = time.monotonic() + timeout
    while True:
        run = offline_run(folder)
        logged = set(run["summary"]) | {key for row in run["history"] for key in row}
        if set(keys) <= logged or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def settled_records(path: Path, timeout: float = 30.0) -> list:
    """The records of an offline run file once it holds its exit record (W&B's core may still be writing
    after ``finish()`` returns when runs share a process, as in-process ``main`` calls do)."""
    from wandb.proto import wandb_internal_pb2 as pb

    deadline = time.monotonic() + timeout
    while True:
        records = []
        for payload in record_payloads(path):
            record = pb.Record()
            record.ParseFromString(payload)
            records.append(record)
        if any(record.WhichOneof("record_type") == "exit" for record in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)
