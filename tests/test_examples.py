"""Every example runs as a user runs it (bash, the installed `distilkit`), in its smoke size ITERS=4 (16
training images, 2 val images), and a second run makes runs of its own instead of picking up the first run's
teacher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CAMVID

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.sh") if not p.name.startswith("_"))


def run_example(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this environment's distilkit
    full = {**os.environ, "PATH": path, "ITERS": "4", **env}
    result = subprocess.run(argv, cwd=cwd, env=full, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_smoke_runs(script, tmp_path):
    argv = ["bash", str(EXAMPLES / script)]
    if script == "camvid_day_teacher.sh":
        if not CAMVID.is_dir():
            pytest.skip("../shared/data/camvid not present")
        argv.append(str(CAMVID))
    run_example(argv, tmp_path, RUN=str(tmp_path / "run"))
    weights = sorted((tmp_path / "run").glob("*/weights/last.safetensors"))
    assert weights, "the example wrote no checkpoint under its RUN directory"


def test_a_second_run_makes_its_own_runs(tmp_path):
    def run_dir() -> str:
        argv = ["bash", "-c", f'source "{EXAMPLES}/_common.sh" >/dev/null; echo "$RUN"', "quickstart.sh"]
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()

    first, second = run_dir(), run_dir()
    assert first.startswith("runs/examples/quickstart-") and second != first


def test_python_api_example(tiny_ckpt, tmp_path):
    result = run_example([sys.executable, str(EXAMPLES / "python_api.py"), str(tiny_ckpt)], tmp_path)
    assert "mIoU on 20 synth-city val images" in result.stdout
