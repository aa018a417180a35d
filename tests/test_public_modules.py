"""Every public module of ``lightning_dims`` says what it exports: an ``__all__`` of names it defines or imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_dims"


def public_modules() -> list[Path]:
    """``lightning_dims/**/*.py`` except private ones (``_x.py``, ``_x/``) and ``__main__.py``."""
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__main__.py"
        and not any(part.startswith("_") and part != "__init__" for part in path.relative_to(PACKAGE).with_suffix("").parts)
    ]


def exported(tree: ast.Module) -> list[str] | None:
    """The literal ``__all__`` of a module, None when it has none."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            return list(ast.literal_eval(node.value))
    return None


def bound_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level (definitions, assignments, imports, also under ``if``/``try``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node in tree.body:
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).partition(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(name.id for name in ast.walk(target) if isinstance(name, ast.Name))
    return names


def test_public_modules_are_found():
    found = {str(path.relative_to(PACKAGE)) for path in public_modules()}
    assert {"__init__.py", "training/run.py", "runs/folder.py", "errors.py"} <= found and "__main__.py" not in found
    assert exported(ast.parse('__all__ = ["a", "B"]\n')) == ["a", "B"] and exported(ast.parse("x = 1\n")) is None
    assert exported(ast.parse("__all__: list[str] = []\n")) == []


def test_every_public_module_has_an_all_of_names_it_binds():
    missing, unbound = [], []
    for path in public_modules():
        tree = ast.parse(path.read_text())
        names = exported(tree)
        where = str(path.relative_to(PACKAGE))
        if names is None:
            missing.append(where)
        elif "__getattr__" not in bound_names(tree) and (stray := sorted(set(names) - bound_names(tree))):  # lazy exports bind late
            unbound.append(f"{where}: {stray}")
    assert missing == [], f"give these modules an __all__ (their public names): {missing}"
    assert unbound == [], f"__all__ names that the module does not bind: {unbound}"


OVERRIDDEN = ("models/classifier.py", "data/datamodule.py", "runs/reproducibility.py", "runs/config_files.py")
"""Modules whose Lightning subclasses mark every hook they override with ``@override`` (callbacks/: test_callbacks_*)."""


def test_lightning_hooks_are_marked_override():
    import lightning.pytorch as pl
    from lightning.pytorch.cli import SaveConfigCallback

    bases = (pl.LightningModule, pl.LightningDataModule, pl.Callback, SaveConfigCallback)
    unmarked = []
    for relative in OVERRIDDEN:
        tree = ast.parse((PACKAGE / relative).read_text())
        for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
            hooks = [base for base in bases if base.__name__ in {ast.unparse(b).rpartition(".")[2] for b in cls.bases}]
            methods = (node for node in cls.body if isinstance(node, ast.FunctionDef) and node.name != "__init__")
            for method in (node for node in methods if "property" not in map(ast.unparse, node.decorator_list)):
                if any(hasattr(base, method.name) for base in hooks) and "override" not in map(ast.unparse, method.decorator_list):
                    unmarked.append(f"{relative}:{method.lineno} {cls.name}.{method.name}")
    assert unmarked == [], f"mark these with typing_extensions.override: {unmarked}"
