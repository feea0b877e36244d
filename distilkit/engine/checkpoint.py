"""The one checkpoint format: a .safetensors file of weights whose metadata rebuilds and uses the model.

Training state for --resume is a separate torch file of tensors and plain containers, always read with
`weights_only=True`, so no file distilkit opens can run code on load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from distilkit import __version__
from distilkit.data.base import DatasetInfo
from distilkit.errors import DistilkitError
from distilkit.utils.files import atomic_write

FORMAT = "distilkit-model"
FORMAT_VERSION = 1


def model_meta(
    model, info: DatasetInfo, imgsz: tuple[int, int], method: str, metrics: dict | None = None, **extra
) -> dict[str, Any]:
    """Everything needed to rebuild and use a model with no other flag."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "distilkit_version": __version__,
        "arch": model.arch,
        "encoder_init": getattr(model, "encoder_init", None),  # where the encoder's initial weights came from
        "num_classes": info.num_classes,
        "class_names": list(info.class_names),
        "palette": [list(c) for c in info.palette],
        "ignore_index": info.ignore_index,
        "eval_classes": list(info.eval_classes) if info.eval_classes else None,
        "imgsz": list(imgsz),
        "mean": list(info.mean),
        "std": list(info.std),
        "dataset": info.name,
        "method": method,
        "metrics": metrics or {},
        **extra,
    }


def info_from_meta(meta: dict) -> DatasetInfo:
    """The class space a checkpoint was trained in (to evaluate or predict without the original dataset)."""
    return DatasetInfo(
        meta["dataset"],
        tuple(meta["class_names"]),
        tuple(tuple(c) for c in meta["palette"]),
        meta["ignore_index"],
        tuple(meta["eval_classes"]) if meta.get("eval_classes") else None,
        tuple(meta["imgsz"]),
        tuple(meta["mean"]),
        tuple(meta["std"]),
    )


def resolve_weights(weights: Path | None, pattern: str = "**/weights/best.safetensors") -> Path:
    """An explicit checkpoint, or the newest one under runs/ matching `pattern` (said aloud)."""
    from distilkit.utils.console import err_console
    from distilkit.utils.files import newest

    if weights is not None:
        return Path(weights)
    found = newest(pattern)
    if found is None:
        how = (
            "export one with `distilkit export-onnx`"
            if pattern.endswith(".onnx")
            else "train one with `distilkit train-teacher`"
        )
        raise DistilkitError(
            f"no checkpoint given and none under ./runs of {Path.cwd()} (runs/{pattern}); pass --weights PATH or {how}"
        )
    err_console.print(f"using the newest checkpoint under ./runs: {found} (--weights PATH to choose another)")
    return found


def save_model(path: Path, model: torch.nn.Module, meta: dict) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata={FORMAT: json.dumps(meta)}))


def read_meta(path: Path) -> dict:
    """Only the JSON metadata (cheap: the header, not the weights)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DistilkitError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(FORMAT)
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise DistilkitError(f"cannot read checkpoint {path}: not a valid .safetensors file ({e})") from None
    if raw is None:
        raise DistilkitError(f"{path} is a safetensors file but not a distilkit checkpoint (no '{FORMAT}' metadata)")
    return validate_meta(raw, path)


def validate_meta(raw: str, path: Path) -> dict:
    """Parse and check a checkpoint's or an export's distilkit metadata, every field once, in one place: one
    line naming the field when it is malformed (a hand-edited file, another tool's), never a traceback later."""

    def bad(what: str) -> DistilkitError:
        return DistilkitError(f"{path}: malformed distilkit metadata: {what}")

    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        raise bad("not valid JSON") from None
    if not isinstance(meta, dict):
        raise bad("not a JSON object")
    if isinstance(meta.get("format_version", 0), int) and meta.get("format_version", 0) > FORMAT_VERSION:
        raise DistilkitError(f"{path} was written by a newer distilkit ({meta.get('distilkit_version')}); upgrade")

    def integer(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def number(v) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    arch = meta.get("arch")
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise bad("'arch' must be an object with a model 'name'")
    n = meta.get("num_classes")
    if not integer(n) or n < 1:
        raise bad(f"'num_classes' must be a positive integer, not {n!r}")
    if arch.get("num_classes", n) != n:
        raise bad(f"'num_classes' {n} disagrees with the model head's {arch.get('num_classes')}")
    names = meta.get("class_names")
    if not isinstance(names, list) or len(names) != n or not all(isinstance(c, str) for c in names):
        raise bad(f"'class_names' must be a list of {n} names")
    palette = meta.get("palette")
    if (
        not isinstance(palette, list)
        or len(palette) != n
        or not all(
            isinstance(c, list) and len(c) == 3 and all(integer(v) and 0 <= v <= 255 for v in c) for c in palette
        )
    ):
        raise bad(f"'palette' must be {n} [r, g, b] colours of 0..255")
    ignore = meta.get("ignore_index")
    if not integer(ignore) or 0 <= ignore < n:
        raise bad(f"'ignore_index' must be an integer that is not a class id, not {ignore!r}")
    eval_classes = meta.get("eval_classes")
    if eval_classes is not None and not (
        isinstance(eval_classes, list) and all(integer(c) and 0 <= c < n for c in eval_classes)
    ):
        raise bad(f"'eval_classes' must be null or class ids below {n}")
    size = meta.get("imgsz")
    if not (isinstance(size, list) and len(size) == 2 and all(integer(v) and v >= 1 for v in size)):
        raise bad("'imgsz' must be two positive integers")
    for key in ("mean", "std"):
        v = meta.get(key)
        if not (isinstance(v, list) and len(v) == 3 and all(number(x) for x in v)) or (
            key == "std" and any(x <= 0 for x in v)
        ):
            raise bad(f"'{key}' must be three numbers" + (" above 0" if key == "std" else ""))
    if not isinstance(meta.get("dataset"), str):
        raise bad("'dataset' must be a name")
    return meta


def load_model(path: Path, device: torch.device | str = "cpu"):
    """Rebuild the model from the metadata and load its weights; returns (model in eval mode, metadata)."""
    from safetensors.torch import load_file

    from distilkit.models import create_model

    meta = read_meta(path)
    try:
        arch = dict(meta["arch"])
        # the architecture's random init is overwritten below: drawn from a forked RNG, so loading a teacher
        # leaves the caller's RNG where it was and a student created next starts from the same weights as in
        # a run without that teacher (distillation arms paired with the student alone at the same seed)
        with torch.random.fork_rng(devices=[]):
            model = create_model(arch.pop("name"), **arch)
    except (KeyError, TypeError, ValueError) as e:  # metadata from another tool or a hand-edited file
        raise DistilkitError(f"checkpoint {path} describes a model distilkit cannot build ({e})") from None
    try:
        state = load_file(str(path))
    except Exception as e:
        raise DistilkitError(f"cannot read checkpoint weights {path}: {e}") from None
    own = model.state_dict()
    missing, unexpected = own.keys() - state.keys(), state.keys() - own.keys()
    reshaped = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    if missing or unexpected or reshaped:
        raise DistilkitError(
            f"checkpoint {path} does not fit architecture '{meta['arch']['name']}' "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(reshaped)} reshaped tensors)"
        )
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise DistilkitError(f"checkpoint {path} holds NaN or infinite weights ({len(broken)} tensors, e.g. "
                             f"{broken[0]}): the run that wrote it diverged; use an earlier checkpoint")  # fmt: skip
    model.load_state_dict(state)
    model.encoder_init = meta.get("encoder_init")  # kept through fine-tuning and distillation
    return model.to(device).eval(), meta


def check_num_classes(meta: dict, num_classes: int, what: str) -> None:
    """Refuse a checkpoint (named by `what`, e.g. '--teacher X') that predicts another label space."""
    if meta["num_classes"] != num_classes:
        raise DistilkitError(f"{what} predicts {meta['num_classes']} classes, but the data has {num_classes}")


def save_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_state(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DistilkitError(f"no training state to resume at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zips, foreign pickles refused by the safe unpickler, ...
        raise DistilkitError(f"cannot resume from {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
