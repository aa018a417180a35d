"""The configs ship inside the wheel: a non-editable install finds the sweeps, callbacks and protocol
files from any folder (``wandb agent`` and ``lightning-dims demo`` outside a checkout)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_every_shipped_config_and_finds_them_outside_the_checkout(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("lightning_dims-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(str(p.relative_to(REPO)) for p in (REPO / "lightning_dims" / "configs").rglob("*.yaml"))
    assert shipped and set(shipped) <= names
    assert "lightning_dims/py.typed" in names and any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import lightning_dims, sys; assert 'site' in lightning_dims.__file__, lightning_dims.__file__\n"
        "from lightning_dims.sweep.grid import expand_grid, load_sweep\n"
        "from lightning_dims.configs import resolve_config\n"
        "print(len(expand_grid(load_sweep('sweeps/paper'))), len(expand_grid(load_sweep('sweeps/quick'))))\n"
        "print(resolve_config('callbacks/fast').name, resolve_config('protocol/arch/vgg16').parent.name)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env={"PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["972", str(len(expand_quick())), "fast.yaml", "arch"]


def expand_quick() -> list:
    from lightning_dims.sweep.grid import expand_grid, load_sweep

    return expand_grid(load_sweep("sweeps/quick"))
