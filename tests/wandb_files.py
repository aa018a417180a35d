"""Reading an offline W&B run file (``run-<id>.wandb``) in tests, without a W&B server.

The file is W&B's LevelDB-style log: a 7-byte header (``:W&B``, magic, version), then 32 KiB
blocks of chunks, each ``crc32 (4) | length (2, little endian) | type (1) | payload``, type 1 a
whole record, 2/3/4 the first/middle/last piece of one. Each record is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def record_payloads(path: str | Path) -> list[bytes]:
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    payloads, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # block trailer too short for a header: skip to the next block
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + HEADER : pos + HEADER + length], pos + HEADER + length
        if kind == FULL:
            payloads.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            payloads.append(pending + chunk)
    return payloads


def offline_run(folder: str | Path) -> dict:
    """``{"history": [{key: value}], "config": {key: value}, "summary": {key: value}, "metrics": {name: summary}}``
    of the one offline run below ``folder`` (``metrics``: ``define_metric`` summaries, e.g. ``{"val/loss": ["min"]}``)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = Path(folder).rglob("offline-run-*/run-*.wandb")
    history, config, summary, metrics = [], {}, {}, {}
    for payload in record_payloads(path):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
        elif kind == "config":
            for item in record.config.update:
                config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "metric":
            kinds = record.metric.summary
            chosen = [name for name in ("min", "max", "mean", "last", "best") if getattr(kinds, name, False)]
            metrics[record.metric.name or record.metric.glob_name] = chosen
    return {"history": history, "config": config, "summary": summary, "metrics": metrics, "file": path}
