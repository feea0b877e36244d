"""Shared fixtures: where ../shared is (tests that need it skip without it) and tiny generated datasets."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# One thread count for the whole suite: every in-process CLI call sets threads from $OMP_NUM_THREADS, so the
# count does not flip between 1 and 2 with each test's --workers (tests/test_threads.py unsets it). Under
# pytest-xdist's two workers (the default, `-n 2` in pyproject.toml) each worker takes one of the 2 cores.
THREADS = "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2"
os.environ["OMP_NUM_THREADS"] = THREADS
torch.set_num_threads(int(THREADS))

os.environ["DISTILKIT_CACHE"] = tempfile.mkdtemp(prefix="distilkit-cache-")  # the scan cache, not the user's
SHARED = Path(os.environ.get("DISTILKIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CAMVID = SHARED / "data" / "camvid"
CITYSCAPES = SHARED / "fixtures" / "cityscapes"

needs_camvid = pytest.mark.skipif(not CAMVID.is_dir(), reason="../shared/data/camvid not present")
needs_cityscapes = pytest.mark.skipif(not CITYSCAPES.is_dir(), reason="../shared/fixtures/cityscapes not present")


def write_folder_dataset(root: Path, n_train: int = 6, n_val: int = 3, size=(64, 128)) -> Path:
    """A `folder` dataset drawn from the synthetic generator, in the Cityscapes class space."""
    from distilkit.data.cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
    from distilkit.data.synth import GAME, generate

    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image, label = generate(GAME, split, i, seed=0, size=size)
            Image.fromarray(image).save(root / "images" / split / f"{i:04d}.png")
            Image.fromarray(label.astype(np.uint8)).save(root / "masks" / split / f"{i:04d}.png")
    spec = {"names": list(CITYSCAPES_CLASSES), "palette": [list(c) for c in CITYSCAPES_PALETTE]}
    (root / "classes.json").write_text(json.dumps(spec))
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_folder_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """An untrained segformer-b0 checkpoint in the synthetic class space (inference tests need no training)."""
    from distilkit.data.synth import SYNTH_INFO
    from distilkit.engine.checkpoint import model_meta, save_model
    from distilkit.models import create_model

    torch.manual_seed(0)
    model = create_model("segformer-b0", SYNTH_INFO.num_classes)
    path = tmp_path_factory.mktemp("ckpt") / "weights" / "best.safetensors"
    save_model(path, model, model_meta(model, SYNTH_INFO, (64, 128), "supervised"))
    return path


def write_video(path: Path, frames: int = 6, size=(64, 128), rate: int = 5) -> Path:
    import av

    from distilkit.data.synth import CAMERA, generate

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            image = generate(CAMERA, "val", i, size=size)[0]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def ok(result):
    """A CliRunner result that succeeded (its output shown when it did not)."""
    assert result.exit_code == 0, result.output
    return result


def one_error_line(result, match: str):
    """A CliRunner result that failed with exactly one `error:` line on stderr, the last, containing `match`
    (warnings may come before it), and no traceback."""
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert "Traceback" not in result.output and errors == lines[-1:] and match in errors[0], result.stderr
