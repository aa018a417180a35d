"""The house of ``lightning_dims``: imports go down the floors, rooms make no cycles, W&B is in one place.

The import graph is computed from the source with ``ast`` (every ``import``, at module level or
inside a function, ``TYPE_CHECKING`` ones too); a *room* is a subpackage or a top-level module of
``lightning_dims`` (``lightning_dims`` itself is the package root's ``__init__``). The floors are
:data:`FLOORS`, the same table as docs/architecture.md (checked below). Each failure names the
offending import as ``file:line``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import lightning_dims

PACKAGE = Path(lightning_dims.__file__).parent
ROOT = "lightning_dims"
ARCHITECTURE_DOC = PACKAGE.parent / "docs" / "architecture.md"

FLOORS = {
    "errors": 0, "seeds": 0, "machine": 0, "compat": 0, "utils": 0, "configs": 0,
    "properties": 1, "network": 1,
    "lightning_dims": 2,
    "data": 3,
    "records": 4, "prepare": 4, "analysis": 4,
    "tracking": 5,
    "runs": 6,
    "models": 7, "callbacks": 7,
    "training": 8, "cli": 8,
    "sweep": 9,
    "commands": 10, "__main__": 10,
}  # fmt: skip
"""Room -> floor, bottom (0) to top. An import may stay on its floor or go down, never up."""

RECORD_PATH_FORBIDDEN = {
    "records": {"runs", "tracking"},
    "tracking": {"runs", "training", "sweep", "commands", "callbacks"},
}
"""A run's record goes fit -> runs.lifecycle -> records (build, store on disk) -> tracking (W&B), never back up."""

WANDB_MODULES = ("wandb", "wandb_workspaces")
WANDB_NAMES = frozenset({"WandbLogger"})
"""W&B's own packages, and the names of Lightning's W&B integration (``lightning.pytorch.loggers``)."""

WANDB_HOMES = ("tracking/", "compat.py")
WANDB_EXCEPTIONS: dict[str, str] = {}
"""Files outside :data:`WANDB_HOMES` that may import W&B, and why."""


@dataclass(frozen=True)
class Import:
    """One ``import`` statement's target, where it is written (``file`` relative to the package)."""

    file: str
    line: int
    source: str  # the importing module, dotted
    target: str  # the imported module (or ``module.name`` for ``from module import name``), dotted
    names: tuple[str, ...] = ()  # what ``from target import ...`` takes

    def where(self) -> str:
        return f"lightning_dims/{self.file}:{self.line}"


def module_name(path: Path, package: Path) -> str:
    """``lightning_dims.a.b`` for ``<package>/a/b.py`` (``lightning_dims.a`` for ``a/__init__.py``)."""
    parts = path.relative_to(package).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((ROOT, *parts))


def imports(package: Path) -> list[Import]:
    """Every import written in the ``.py`` files under ``package``, relative imports resolved."""
    found = []
    for path in sorted(package.rglob("*.py")):
        source = module_name(path, package)
        is_package = path.name == "__init__.py"
        file = str(path.relative_to(package))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [Import(file, node.lineno, source, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    base = source.split(".")[: len(source.split(".")) - node.level + is_package]
                    module = ".".join([*base, module] if module else base)
                names = tuple(alias.name for alias in node.names)
                found += [Import(file, node.lineno, source, module, names)]
    return found


def room(module: str) -> str | None:
    """The room of dotted ``module`` (``lightning_dims`` for the package root; None outside the package)."""
    parts = module.split(".")
    if parts[0] != ROOT:
        return None
    return parts[1] if len(parts) > 1 else ROOT


def room_edges(found: Iterable[Import], package: Path) -> list[tuple[str, str, Import]]:
    """``(from room, to room, import)`` for every import between two different rooms of the package.

    ``from lightning_dims import X`` is an import of room ``X`` when ``X`` is a module or a
    subpackage, else (``__version__``) of the package root."""
    edges = []
    for imp in found:
        source = room(imp.source)
        targets = [imp.target]
        if imp.target == ROOT:  # from lightning_dims import X: X may be a room
            targets = [
                f"{ROOT}.{name}" if (package / f"{name}.py").exists() or (package / name).is_dir() else ROOT
                for name in imp.names
            ]
        for target in targets:
            to = room(target)
            if to is not None and to != source:
                edges.append((source, to, imp))
    return edges


def unknown_rooms(edges, package: Path, floors: Mapping[str, int]) -> list[str]:
    """Rooms of the package with no floor."""
    rooms = {room(module_name(path, package)) for path in package.rglob("*.py")}
    rooms |= {a for a, _, _ in edges} | {b for _, b, _ in edges}
    return sorted(r for r in rooms if r not in floors)


def upward_imports(edges, floors: Mapping[str, int]) -> list[str]:
    """Each import that goes up a floor, as ``file:line: a (floor i) imports b (floor j)``."""
    return [
        f"{imp.where()}: {a} (floor {floors[a]}) imports {imp.target} ({b}, floor {floors[b]})"
        for a, b, imp in edges
        if floors[b] > floors[a]
    ]


def cycles(edges) -> list[str]:
    """Each cycle of rooms (the shortest through each arrow that has one), with the import behind every arrow."""
    graph: dict[str, dict[str, Import]] = {}
    for a, b, imp in edges:
        graph.setdefault(a, {}).setdefault(b, imp)
    found, seen = [], set()
    for a in sorted(graph):
        for b in sorted(graph[a]):
            back = shortest_path(graph, b, a)
            if back is None or frozenset(back) in seen:
                continue
            seen.add(frozenset(back))
            loop = [a, *back]
            found.append("; ".join(f"{x} -> {y} ({graph[x][y].where()})" for x, y in zip(loop, loop[1:])))
    return found


def shortest_path(graph: Mapping[str, Mapping[str, Import]], start: str, end: str) -> list[str] | None:
    """The rooms of a shortest path ``start -> ... -> end`` (breadth first), or None."""
    previous: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            if node == end:
                path = [node]
                while (node := previous[node]) is not None:
                    path.append(node)
                return path[::-1]
            for nxt in sorted(graph.get(node, {})):
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return None


def forbidden_imports(edges, forbidden: Mapping[str, set[str]]) -> list[str]:
    """Imports from room ``a`` of a room ``forbidden[a]`` names."""
    return [
        f"{imp.where()}: {a} imports {imp.target} ({b})" for a, b, imp in edges if b in forbidden.get(a, ())
    ]


def is_wandb_import(imp: Import) -> bool:
    """An import of W&B's packages or of Lightning's ``WandbLogger``."""
    if imp.target.split(".")[0] in WANDB_MODULES:
        return True
    return imp.target.startswith("lightning.pytorch.loggers") and bool(WANDB_NAMES & set(imp.names))


def wandb_outside_tracking(found: Iterable[Import], homes=WANDB_HOMES, exceptions=WANDB_EXCEPTIONS) -> list[str]:
    """W&B imports outside ``homes`` and the files ``exceptions`` names."""
    return [
        f"{imp.where()}: imports {imp.target} {', '.join(imp.names)}".rstrip()
        for imp in found
        if is_wandb_import(imp) and not imp.file.startswith(homes) and imp.file not in exceptions
    ]


def doc_floors(text: str) -> dict[str, int]:
    """Room -> floor from the table of docs/architecture.md (``| floor | `room` `room` | what |``)."""
    floors = {}
    for line in text.splitlines():
        if match := re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line):
            floors.update({name: int(match.group(1)) for name in re.findall(r"`([^`]+)`", match.group(2))})
    return floors


# ---- the checks, on the installed package ------------------------------------------------------------

IMPORTS = imports(PACKAGE)
EDGES = room_edges(IMPORTS, PACKAGE)


def problems(found: list[str], fix: str) -> str:
    """The assertion message: every offending import on its own line, then what to do."""
    return "\n".join([*found, fix])


def test_every_room_has_a_floor():
    found = unknown_rooms(EDGES, PACKAGE, FLOORS)
    assert found == [], problems(found, "give each new room a floor in FLOORS and in docs/architecture.md's table")


def test_imports_never_go_up_a_floor():
    found = upward_imports(EDGES, FLOORS)
    assert found == [], problems(found, "move the code down to a floor its users stand on, or pass it in from above")


def test_no_cycles_between_rooms():
    found = cycles(EDGES)
    assert found == [], problems(found, "break each cycle: one of its arrows goes up")


def test_a_record_goes_down_to_disk_and_wandb_never_back_up():
    """records imports neither runs nor tracking (nor any room on or above its floor but its own);
    tracking imports no runs, training, sweep, commands or callbacks."""
    above_records = {name for name, floor in FLOORS.items() if floor >= FLOORS["records"] and name != "records"}
    found = forbidden_imports(EDGES, RECORD_PATH_FORBIDDEN) + forbidden_imports(EDGES, {"records": above_records})
    assert found == [], problems(found, "the caller above passes what these modules need; they do not reach up for it")


def test_wandb_is_imported_only_in_tracking_and_compat():
    found = wandb_outside_tracking(IMPORTS)
    assert found == [], problems(found, "move the W&B code into lightning_dims/tracking/ (or justify it in WANDB_EXCEPTIONS)")


def test_each_wandb_exception_still_imports_wandb():
    """An exception that no longer imports W&B is removed from WANDB_EXCEPTIONS, not kept as a loophole."""
    users = {imp.file for imp in IMPORTS if is_wandb_import(imp)}
    assert sorted(set(WANDB_EXCEPTIONS) - users) == []
    assert any(imp.file.startswith("tracking/") for imp in IMPORTS if is_wandb_import(imp))


def test_the_doc_and_the_test_list_the_same_floors():
    assert doc_floors(ARCHITECTURE_DOC.read_text()) == FLOORS


def test_the_graph_is_the_real_one():
    """The parser sees function-level and ``from lightning_dims import X`` imports (else the checks above check nothing)."""
    pairs = {(a, b) for a, b, _ in EDGES}
    assert {("runs", "tracking"), ("tracking", "records"), ("records", "properties"), ("commands", "cli")} <= pairs
    assert ("records", ROOT) in pairs  # records.build: `from lightning_dims import __version__`, inside a function
    assert ("__main__", "cli") in pairs


# ---- the checks can fail, and say where ---------------------------------------------------------------


def test_an_upward_import_a_cycle_and_a_stray_wandb_import_are_named_by_file_and_line(tmp_path):
    package = tmp_path / ROOT
    for name, text in {
        "__init__.py": "",
        "records/__init__.py": "",
        "records/build.py": "import os\n\n\ndef f():\n    from lightning_dims.runs.lifecycle import g\n",
        "runs/__init__.py": "",
        "runs/lifecycle.py": "from lightning_dims.records import build\n",
        "callbacks/log.py": "from lightning.pytorch.loggers import CSVLogger, WandbLogger\n",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    found = imports(package)
    edges = room_edges(found, package)
    floors = {"records": 4, "runs": 6, "callbacks": 7, ROOT: 2}
    assert upward_imports(edges, floors) == [
        "lightning_dims/records/build.py:5: records (floor 4) imports lightning_dims.runs.lifecycle (runs, floor 6)"
    ]
    assert cycles(edges) == [
        "records -> runs (lightning_dims/records/build.py:5); runs -> records (lightning_dims/runs/lifecycle.py:1)"
    ]
    assert forbidden_imports(edges, RECORD_PATH_FORBIDDEN) == [
        "lightning_dims/records/build.py:5: records imports lightning_dims.runs.lifecycle (runs)"
    ]
    assert wandb_outside_tracking(found) == [
        "lightning_dims/callbacks/log.py:1: imports lightning.pytorch.loggers CSVLogger, WandbLogger"
    ]
    assert unknown_rooms(edges, package, {"records": 4}) == ["callbacks", "lightning_dims", "runs"]
