"""The three promises of docs/reliability.md, asserted on generated input rather than listed cases.

For every command, hypothesis generates option values (numbers of every size and sign, NaN, infinities, text),
`--config` files (any YAML document) and checkpoint metadata (a valid record with one field replaced by any
JSON value). Each run must end in success or in exactly one `error:` line with a non-zero exit code, never a
traceback, and every file that existed before must be byte-for-byte unchanged. A case nobody listed is
covered because the mechanisms (one error boundary, one schema, one write guard) are, not the cases.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from distilkit.cli import app

CPU = ["--device", "cpu", "--workers", "0"]
TINY = ["--imgsz", "32", "64", "--batch", "1"]
TRAIN_TINY = ["--iters", "1", "--val-every", "1", "--val-limit", "1", "--train-limit", "2", "--warmup", "0"]
FAST = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# what a careless or hostile user types where a number is expected
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "abc", "1e309", "-0", "nan", "0x10", "1_000", "  3", "½"]),
)


def snapshot(*roots: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for r in roots for p in Path(r).rglob("*") if p.is_file()
    }


@contextmanager
def inside(folder: Path):
    """Run in `folder` (runs/ lands there), also under hypothesis, which refuses function-scoped fixtures."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def keeps_promises(argv: list[str], cwd: Path, *kept: Path) -> None:
    """Run `argv` in-process; success, or one `error:` line and a non-zero exit; files in `kept` unchanged."""
    before = snapshot(*kept)
    with inside(cwd):
        result = CliRunner().invoke(app, argv)
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    shown = f"argv {argv}\nexit {result.exit_code}\n{text[-2000:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{shown}\nraised {type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in text, shown
    if result.exit_code != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith(("error:", "interrupted"))]
        assert len(errors) == 1, shown
    assert snapshot(*kept) == before, f"{shown}\na file that was there before changed"


# command -> (argv before the fuzzed option, the options to fuzz); the fuzzed option comes last, so it wins
def _commands(data: Path, ckpt: Path, image: Path) -> dict[str, tuple[list[str], list[str]]]:
    folder = ["--data", "folder", "--data-root", str(data)]
    teacher = ["--teacher", str(ckpt), *folder, *TRAIN_TINY, *TINY, *CPU]
    sakd = [a if a != "--iters" else "--epochs" for a in teacher]  # SAKD's length is in epochs
    return {
        "evaluate": (["evaluate", str(ckpt), *folder, "--limit", "1", *TINY, *CPU],
                     ["--batch", "--limit", "--threads"]),
        "predict": (["predict", str(image), "--weights", str(ckpt), *TINY, "--device", "cpu"],
                    ["--batch", "--alpha", "--imgsz", "--threads"]),
        "fps": (["fps", str(ckpt), "--iters", "1", "--warmup", "0", *TINY, "--device", "cpu"],
                ["--batch", "--iters", "--warmup", "--imgsz", "--threads"]),
        "train-teacher": (["train-teacher", "--model", "segformer-b0", *folder, *TRAIN_TINY, *TINY, *CPU],
                          ["--lr", "--seed", "--weight-decay", "--warmup", "--val-limit", "--jitter"]),
        "distill sdd": (["distill", "sdd", *teacher], ["--temperature", "--beta", "--scales", "--kd-weight", "--lr"]),
        "distill cwd": (["distill", "cwd", *teacher], ["--tau", "--cwd-weight", "--temperature", "--seed"]),
        "distill hdl": (["distill", "hdl", *teacher], ["--width", "--tau", "--cs-weight", "--freeze-epochs"]),
        "distill sakd": (["distill", "sakd", *sakd], ["--grid", "--ratio", "--lambda", "--difficulty-scale"]),
    }  # fmt: skip


def _tiny_image(folder: Path) -> Path:
    from PIL import Image

    path = folder / "street.png"
    if not path.exists():
        Image.new("RGB", (64, 32), (90, 120, 200)).save(path)
    return path


@pytest.mark.parametrize(
    "command",
    ["evaluate", "predict", "fps", "train-teacher", "distill sdd", "distill cwd", "distill hdl", "distill sakd"],
)
def test_generated_option_values_keep_the_promises(command, tiny_data, tiny_ckpt, tmp_path) -> None:
    image = _tiny_image(tmp_path)
    base, fuzzed = _commands(tiny_data, tiny_ckpt, image)[command]

    @FAST
    @given(flag=st.sampled_from(fuzzed), value=NUMBERS)
    def check(flag: str, value) -> None:
        values = [str(value)] * (2 if flag == "--imgsz" else 1)
        keeps_promises([*base, flag, *values], tmp_path, tiny_data, tiny_ckpt.parent, image)

    check()


# any YAML document: scalars of every type, nested lists and mappings, keys real and made up
_KEYS = st.sampled_from(["batch", "limit", "imgsz", "device", "workers", "data", "mode", "split", "name", "x", "--b"])
_SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=8))
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=8,
)


@FAST
@given(doc=st.dictionaries(_KEYS, _DOCS, max_size=4) | _DOCS)
def test_generated_config_files_keep_the_promises(doc, tiny_data, tiny_ckpt, tmp_path_factory) -> None:
    tmp = tmp_path_factory.mktemp("config")
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(doc, allow_unicode=True))
    argv = ["evaluate", str(tiny_ckpt), "--data", "folder", "--data-root", str(tiny_data), "--limit", "1",
            "--config", str(config), *TINY, *CPU]  # fmt: skip
    keeps_promises(argv, tmp, tiny_data, tiny_ckpt.parent, config)


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
_FIELDS = ["arch", "num_classes", "class_names", "palette", "ignore_index", "eval_classes", "imgsz", "mean", "std",
           "dataset", "format_version", "encoder_init"]  # fmt: skip


def _with_meta(ckpt: Path, folder: Path, edit: Callable[[dict], None]) -> Path:
    from safetensors.torch import load_file, save_file

    from distilkit.engine.checkpoint import FORMAT, read_meta

    meta = read_meta(ckpt)
    edit(meta)
    path = folder / "edited.safetensors"
    save_file(load_file(str(ckpt)), str(path), metadata={FORMAT: json.dumps(meta, allow_nan=True)})
    return path


@FAST
@given(field=st.sampled_from(_FIELDS), value=_JSON, arch_key=st.sampled_from(["pretrained", "name", "num_classes"]))
def test_generated_checkpoint_metadata_keeps_the_promises(
    field, value, arch_key, tiny_data, tiny_ckpt, tmp_path_factory
) -> None:
    tmp = tmp_path_factory.mktemp("meta")

    def edit(meta: dict) -> None:
        if field == "arch" and isinstance(meta["arch"], dict):
            meta["arch"][arch_key] = value  # a forged builder argument
        else:
            meta[field] = value

    ckpt = _with_meta(tiny_ckpt, tmp, edit)
    argv = ["evaluate", str(ckpt), "--data", "folder", "--data-root", str(tiny_data), "--limit", "1", *TINY, *CPU]
    keeps_promises(argv, tmp, tiny_data, ckpt)
