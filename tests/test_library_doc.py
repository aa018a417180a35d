"""docs/library.md runs: its python blocks, in order, in one namespace (a user's own LightningModule with
plain loaders, dict batches, standardised inputs, a tuple-returning forward and a ResNet as
``self.backbone``; the three callbacks; the no-Trainer functions, asserted equal to the callbacks)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "library.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.slow
def test_library_page_examples_run_and_agree(monkeypatch, capsys):
    monkeypatch.setenv("GIT_PYTHON_REFRESH", "quiet")
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) == 3
    namespace: dict = {"__name__": "library_doc"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # e.g. a BoundsWarning would fail the page
        warnings.filterwarnings("ignore", message=".*(does not have many workers|isinstance\\(treespec).*")
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    records = namespace["records"]
    assert set(records["d_repr"]["d_repr"]) == {"backbone.layer4", "backbone.avgpool"}
    assert records["d_repr"]["d_repr_details"]["layers"] == ["backbone.layer4", "backbone.avgpool"]
    fgsm = next(iter(records["fgsm"]["fgsm"].values()))
    assert fgsm["n"] == len(namespace["test"].dataset) == 77 and fgsm["attacked_loss"] >= fgsm["clean_loss"]
    assert records["data"]["data_properties"]["n"] == 200
    assert "Traceback" not in capsys.readouterr().err
