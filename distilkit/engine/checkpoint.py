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
        raise DistilkitError(f"no checkpoint given and none under runs/ ({pattern}); {how}")
    err_console.print(f"using the newest checkpoint: {found}")
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
    meta = json.loads(raw)
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise DistilkitError(f"{path} was written by a newer distilkit ({meta.get('distilkit_version')}); upgrade")
    return meta


def load_model(path: Path, device: torch.device | str = "cpu"):
    """Rebuild the model from the metadata and load its weights; returns (model in eval mode, metadata)."""
    from safetensors.torch import load_file

    from distilkit.models import create_model

    meta = read_meta(path)
    try:
        arch = dict(meta["arch"])
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
