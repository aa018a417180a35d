"""lightning_dims.utils: atomic writes that never leave half a file, digests bit-identical to the
code they replaced, one dict flattener.

The pinned hex strings below were computed with the hand-written code each call site had before it
used :mod:`lightning_dims.utils` (commit 623b5b2); a change to a canonical JSON spelling or a cut
length changes them, and with them every stored run id, config_hash and cache key.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lightning_dims import utils
from lightning_dims.utils import (
    TEMPORARY_GLOB,
    atomic_open,
    atomic_write,
    canonical_json,
    digest,
    file_digest,
    flatten,
    publish_new,
    temporary_path,
)

UTILS_FILE = Path(utils.__file__)


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob(TEMPORARY_GLOB))


# ---- the bottom of the house --------------------------------------------------------------------


def test_utils_imports_only_the_standard_library():
    modules = set()
    for node in ast.walk(ast.parse(UTILS_FILE.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module.split(".")[0])
    assert modules - {"__future__"} <= sys.stdlib_module_names, modules - sys.stdlib_module_names


# ---- atomic writes ------------------------------------------------------------------------------


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "out.json"  # parent folders are made
    assert atomic_write(path, "first ü\n") == path
    assert path.read_bytes() == "first ü\n".encode()
    with open(path) as old:  # a reader that opened the old file keeps reading it whole
        atomic_write(path, b"\x00second")
        assert old.read() == "first ü\n"
    assert path.read_bytes() == b"\x00second"
    assert leftovers(path.parent) == []


def test_a_write_that_raises_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = atomic_write(tmp_path / "entry.json", '{"old": 1}')
    with pytest.raises(TypeError):
        with atomic_open(path) as stream:
            json.dump({"a_first": "x" * 100_000, "z_last": object()}, stream)  # streams half, then fails
    assert path.read_text() == '{"old": 1}'
    assert leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="mode 'w' or 'wb'"):
        with atomic_open(path, "a"):
            pass


KILLED_WRITER = r"""
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("utils_under_test", sys.argv[1])
utils = importlib.util.module_from_spec(spec)
spec.loader.exec_module(utils)
with utils.atomic_open(sys.argv[2], "wb") as stream:
    stream.write(b"half of the new content ")
    stream.flush()
    open(sys.argv[3], "w").close()  # tell the parent: half written
    time.sleep(60)
    stream.write(b"and the rest")
"""


def test_a_writer_killed_mid_write_leaves_the_old_file_whole(tmp_path):
    """SIGKILL (no cleanup runs): the target keeps its old content; only a recognisable temporary is left."""
    path = atomic_write(tmp_path / "record.json", b"old content, complete")
    halfway = tmp_path / "halfway"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(UTILS_FILE), str(path), str(halfway)])
    try:
        deadline = time.monotonic() + 60
        while not halfway.exists():
            assert writer.poll() is None and time.monotonic() < deadline, "the writer did not get half-way"
            time.sleep(0.01)
        [temporary] = leftovers(tmp_path)
        assert (tmp_path / temporary).read_bytes() == b"half of the new content "
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == -signal.SIGKILL
    assert path.read_bytes() == b"old content, complete"
    assert leftovers(tmp_path) == [temporary]  # what prepare's remove_partials deletes on the next run


def test_temporary_names_are_unique_hidden_and_found_by_the_glob(tmp_path):
    names = {temporary_path(tmp_path / "a.png").name for _ in range(100)}
    assert len(names) == 100
    assert all(name.startswith(f".a.png.{os.getpid()}-") and name.endswith(".tmp") for name in names)
    for name in list(names)[:3]:
        (tmp_path / name).touch()
    (tmp_path / "a.png").touch()
    (tmp_path / "visible.tmp").touch()
    assert len(leftovers(tmp_path)) == 3


def test_publish_new_creates_once_and_never_overwrites(tmp_path):
    path = tmp_path / "claim.json"
    assert publish_new(path, '{"holder": 1}') is True
    assert publish_new(path, '{"holder": 2}') is False
    assert publish_new(path, b"bytes too") is False
    assert path.read_text() == '{"holder": 1}'
    assert leftovers(tmp_path) == []


def test_racing_publishers_exactly_one_wins_and_its_file_is_whole(tmp_path):
    path = tmp_path / "record.json"
    start, results = threading.Barrier(8), {}

    def publish(i: int) -> None:
        start.wait()
        results[i] = publish_new(path, json.dumps({"writer": i, "padding": "x" * 200_000}), fsync=False)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, won in results.items() if won]
    assert len(winners) == 1
    assert json.loads(path.read_text())["writer"] == winners[0]
    assert leftovers(tmp_path) == []


# ---- canonical JSON and digests -----------------------------------------------------------------


def test_canonical_json_forms():
    value = {"b": 1, "a": [1, 2], "é": Path("/x")}
    assert canonical_json(value) == '{"a":[1,2],"b":1,"\\u00e9":"/x"}'
    assert canonical_json(value, compact=False) == '{"a": [1, 2], "b": 1, "\\u00e9": "/x"}'
    with pytest.raises(TypeError):
        canonical_json(value, strict=True)


def test_digest_cuts_hashes_and_streams_chunks(tmp_path):
    assert digest("abc") == hashlib.sha256(b"abc").hexdigest()
    assert digest(b"abc", 12) == hashlib.sha256(b"abc").hexdigest()[:12]
    assert digest(["a", b"b", "c"]) == digest("abc")
    assert digest("abc", 8, algorithm="sha1") == hashlib.sha1(b"abc").hexdigest()[:8]
    (tmp_path / "f").write_bytes(bytes(range(256)) * 1000)
    assert file_digest(tmp_path / "f") == hashlib.sha256(bytes(range(256)) * 1000).hexdigest()
    assert file_digest(tmp_path / "f", 16) == file_digest(tmp_path / "f")[:16]


CONFIG = {
    "model": {"arch": "resnet18", "lr": 1e-3, "head": None},
    "data": {"name": "digits", "classes": [3, 8], "spec": {}},
    "trainer": {"callbacks": [{"class_path": "X", "init_args": {"a": 1}}], "max_epochs": 2},
    "opt": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.1}},
    "path": Path("/x/y"), "ü": "é", "f": 0.1 + 0.2,
}  # fmt: skip


def test_run_identity_hashes_are_unchanged():
    from lightning_dims.runs import identity

    assert identity.config_hash(CONFIG) == "3cd8a3fba73fa76a"
    assert identity.config_hash(identity.result_config(CONFIG, "abc")) == "f88301b9945400b1"
    assert identity.short_hash("a", 1, ["b"], None) == "68bf8a02"
    assert identity.launcher_key({"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "job-7"}) == "torchrunab647ec4"
    rendezvous = {"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "none", "MASTER_ADDR": "h", "MASTER_PORT": "29500"}
    assert identity.launcher_key(rendezvous, ["fit", "--x"]) == "torchrunde17599d"
    from lightning_dims.tracking.run import wandb_run_id

    assert wandb_run_id("r" * 80) == "r" * 55 + "-a4f5d95f"
    assert identity.differing_keys({"a": 1, "b": [1, 2]}, {"a": 1.0, "b": [1, 3], "c": None}) == [
        "a: 1 -> 1.0", "b: [1,2] -> [1,3]", 'c: "<unset>" -> null'
    ]  # fmt: skip


def test_sweep_and_selection_hashes_are_unchanged(tmp_path):
    from lightning_dims.records.selection import protocol_hash
    from lightning_dims.sweep import grid

    assert protocol_hash({"spec": "x", "lr": 0.1, "p": Path("/q"), "n": None, "u": "é"}) == "df6b9e147487"
    parameters = {"data": {"name": "digits", "n": 5}, "seed": 0, "p": Path("/a"), "u": "é"}
    assert grid.run_id_for(parameters, "ident") == "digits-0-ba07d0ec6b2f"
    (tmp_path / "c.yaml").write_text("trainer:\n  max_epochs: 3\n")
    command = ["${program}", "--config", "c.yaml", "--config=missing.yaml", "${args}"]
    assert (
        grid.command_identity({"program": "p", "command": command}, tmp_path)
        == "4cc35dbf38adbfc79840ae7129e6d7913eb4469cfa4fda8e20169b5636c9c7be"
    )


def test_data_identities_are_unchanged(tmp_path):
    from lightning_dims.data import file_digests, pool, property_cache
    from lightning_dims.data.manifest import with_preparation_spec

    arrays = (np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1, 0, 1]))
    assert pool.content_signature(*arrays) == "61eb265b23876482"
    payload = {"dataset": "digits", "n": 100, "options": {"b": [1, 2], "a": 0.5}, "u": "é"}
    assert property_cache.fingerprint(payload) == "3d0bff3dbfff20e17b810d96888455981cdff5fd3d26a1a831ff0aec5871b08b"
    with pytest.raises(TypeError):  # the cache key never hashes str() of an object
        property_cache.fingerprint({"path": Path("/x")})

    a, b = tmp_path / "a" / "x.png", tmp_path / "b" / "y.png"
    a.parent.mkdir(), b.parent.mkdir()
    a.write_bytes(b"abc"), b.write_bytes(bytes(range(256)) * 100)
    assert file_digest(b) == "22c27b021752596140145a93194d9cdf33b0b1b454f50fd1b430491eb3eb3cb9"
    assert file_digests.files_digest([a, b]) == "5373830585e72f6c615bcd2185f98c5a64bf79f038f94848e8c44eda1cd43b31"
    assert file_digests.files_digest([a, b]) == "5373830585e72f6c615bcd2185f98c5a64bf79f038f94848e8c44eda1cd43b31"  # memo
    assert file_digests.files_digest([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    memo_name = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:24]  # the memo keeps its old name
    assert (property_cache.cache_dir() / "file-digests" / f"{memo_name}.json").is_file()

    (tmp_path / "prepare.json").write_text('{"k": 1}\n')
    files = pool.FilePool(labels=np.array([0]), class_names=["a"], signature="0123456789abcdef", paths=[a])
    assert with_preparation_spec(files, tmp_path).signature == "7b11e07738d17002"

    # path-dependent identities against the formulas they had (absolute paths cannot be pinned)
    old_listing = hashlib.sha256(str(tmp_path.resolve()).encode())
    for path, label in ((a, 0), (b, 1)):
        old_listing.update(f"{path.relative_to(tmp_path)}\t{label}\n".encode())
    assert pool.listing_signature([a, b], np.array([0, 1]), tmp_path) == old_listing.hexdigest()[:16]
    stats = [f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in (a, b)]
    assert pool.file_signature(a, b) == hashlib.sha256("|".join(stats).encode()).hexdigest()[:16]


def test_the_task_data_fingerprint_is_unchanged():
    from lightning_dims.data.task import DatasetTask

    task = DatasetTask("digits", classes=[3, 8], train_size=60, val_size=20, test_size=50, seed=0)
    assert task.data_fingerprint() == "7d584f622f91dfd1"  # computed by the hand-written sha256 it replaced


# ---- flatten ------------------------------------------------------------------------------------

NESTED = {"a": {"b": {"c": 1, "d": []}, "e": {}}, "f": None, "g": [{"h": 1}], "i": {"class_path": "k", "init_args": {}}}


def test_flatten_keeps_lists_none_and_empty_mappings_as_values():
    from lightning_dims.models.presets import paper_defaults
    from lightning_dims.records import ResultsRecord

    expected = {"a.b.c": 1, "a.b.d": [], "a.e": {}, "f": None, "g": [{"h": 1}], "i.class_path": "k", "i.init_args": {}}
    assert flatten(NESTED) == expected  # what models/presets.flatten and records/schema.flatten returned
    assert flatten(NESTED, "top", "/")["top/a/b/c"] == 1
    assert "model.lr" in paper_defaults("resnet18", "mnist")
    flat = ResultsRecord(run_id="r", status="failed", dataset="digits", arch="resnet18", n_train=1, seed=0,
                         config={"model": {"lr": 0.1}}).flat()  # fmt: skip
    assert flat["config.model"] == {"lr": 0.1} and flat["run_id"] == "r"


def test_the_config_hash_flattener_keeps_class_specs_whole():
    from lightning_dims.runs.identity import flatten_config

    flat = flatten_config(CONFIG)
    assert flat["opt"] == {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.1}}
    assert flat["trainer.callbacks"] == [{"class_path": "X", "init_args": {"a": 1}}]
    assert flat["data.spec"] == {} and flat["model.head"] is None and flat["data.classes"] == [3, 8]
    assert list(flat) == [
        "model.arch", "model.lr", "model.head", "data.name", "data.classes", "data.spec", "trainer.callbacks",
        "trainer.max_epochs", "opt", "path", "ü", "f",
    ]  # fmt: skip
    assert flatten_config({"i": NESTED["i"]}) == {"i": NESTED["i"]}


# ---- StrEnum ------------------------------------------------------------------------------------


def test_str_enum_members_print_and_serialise_as_their_values():
    from lightning_dims.utils import StrEnum

    class Colour(StrEnum):
        RED = "red"

    assert str(Colour.RED) == f"{Colour.RED}" == "red"
    assert f"[{Colour.RED:>5}]" == "[  red]"
    assert json.dumps({"c": Colour.RED}) == '{"c": "red"}'
    assert Colour("red") is Colour.RED and Colour.RED == "red"
