"""The bug-planting script stays runnable: every planted bug still finds its one place in the code
and names tests that exist. The script itself refuses stale bugs, but only when someone runs it;
a refactor had moved four of them unnoticed before this test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_mutants():
    spec = importlib.util.spec_from_file_location("plant_bugs", ROOT / "scripts" / "plant_bugs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("plant_bugs", module)
    spec.loader.exec_module(module)
    return module.MUTANTS


MUTANTS = load_mutants()


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_planted_bug_has_exactly_one_place_and_existing_tests(mutant):
    source = (ROOT / mutant.path).read_text()
    assert source.count(mutant.old) == 1, f"{mutant.name}: its code moved; update scripts/plant_bugs.py"
    assert mutant.new != mutant.old
    for test in mutant.tests:
        assert (ROOT / test.split("::")[0]).is_file(), f"{mutant.name}: {test} does not exist"
