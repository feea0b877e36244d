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
from distilkit.errors import DistilkitError, first_line
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
    """Parse and check a checkpoint's or an export's distilkit metadata against its schema (distilkit/schema.py:
    types, finite mean and std in a sane range, unique class names, palette of bytes, an `arch` of known builder
    arguments only), in one place: one line naming the field when it is malformed (a hand-edited file, another
    tool's), never a traceback or a wrong score later."""
    from distilkit.schema import check_meta

    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, TypeError, RecursionError):
        raise DistilkitError(f"{path}: malformed distilkit metadata: not valid JSON") from None
    try:
        check_meta(meta)
    except ValueError as e:
        if str(e).startswith("written by a newer"):
            raise DistilkitError(f"{path} was {e}") from None
        raise DistilkitError(f"{path}: malformed distilkit metadata: {e}") from None
    return meta


def builder_args(path: Path, arch: dict) -> tuple[str, dict]:
    """The model name and the arguments a file may pass to its builder: those of the builder's own signature
    (never `pretrained`, a path or an encoder name: a forged file must not open a path or reach a hub)."""
    import inspect

    from distilkit.models.registry import _MODELS

    arch = dict(arch)
    name, n = arch.pop("name"), arch.pop("num_classes", None)
    if name not in _MODELS:
        raise DistilkitError(f"checkpoint {path} describes a model distilkit cannot build (unknown model '{name}')")
    own = {p for p in inspect.signature(_MODELS[name]).parameters if p not in ("num_classes", "pretrained")}
    refused = sorted(k for k in arch if k not in own or k.startswith("_"))
    if refused:
        raise DistilkitError(f"checkpoint {path} describes a model distilkit cannot build ('{name}' takes no "
                             f"argument {', '.join(map(repr, refused))} from a file)")  # fmt: skip
    return name, {"num_classes": n, **arch}


def load_model(path: Path, device: torch.device | str = "cpu"):
    """Rebuild the model from the metadata and load its weights; returns (model in eval mode, metadata)."""
    from safetensors.torch import load_file

    from distilkit.models import create_model

    meta = read_meta(path)
    name, arch = builder_args(path, meta["arch"])
    arch["num_classes"] = arch["num_classes"] or meta["num_classes"]
    try:
        # the architecture's random init is overwritten below: drawn from a forked RNG, so loading a teacher
        # leaves the caller's RNG where it was and a student created next starts from the same weights as in
        # a run without that teacher (distillation arms paired with the student alone at the same seed)
        with torch.random.fork_rng(devices=[]):
            model = create_model(name, **arch)
    except (KeyError, TypeError, ValueError) as e:  # metadata from another tool or a hand-edited file
        raise DistilkitError(f"checkpoint {path} describes a model distilkit cannot build ({e})") from None
    try:
        state = load_file(str(path))
    except Exception as e:
        raise DistilkitError(f"cannot read checkpoint weights {path}: {e}") from None
    own = model.state_dict()
    missing, unexpected = own.keys() - state.keys(), state.keys() - own.keys()
    reshaped = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    # an integer or boolean tensor where the model holds floats would be cast to garbage weights on load
    retyped = [k for k in own.keys() & state.keys() if own[k].is_floating_point() != state[k].is_floating_point()]
    if retyped:
        raise DistilkitError(
            f"checkpoint {path} holds {state[retyped[0]].dtype} tensors where the model has floating point "
            f"weights ({len(retyped)}, e.g. {retyped[0]}): not model weights"
        )
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


def show_names(names) -> str:
    """A class list in one line: the first and last few of a long one."""
    names = list(names)
    shown = names if len(names) <= 8 else [*names[:5], "...", *names[-2:]]
    return f"{len(names)} classes [{', '.join(shown)}]"


def check_label_space(
    model_names, data_names, what: str, data: str = "the data", advice: str = "a model of another label space"
) -> None:
    """Refuse a model (named by `what`, e.g. '--teacher X') that predicts another label space than `data`'s: the
    same class names in the same order, not merely as many (another data set's 11 classes are not CamVid's)."""
    if list(model_names) != list(data_names):
        raise DistilkitError(f"{what} predicts {show_names(model_names)}, but {data} has {show_names(data_names)}: "
                             f"{advice}")  # fmt: skip


def save_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_state(path: Path) -> dict:
    """The training state for --resume, its top level checked against its schema (distilkit/schema.py)."""
    from pydantic import ValidationError

    from distilkit.schema import ResumeState

    path = Path(path)
    if not path.is_file():
        raise DistilkitError(f"no training state to resume at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zips, foreign pickles refused by the safe unpickler, ...
        raise DistilkitError(f"cannot resume from {path}: {type(e).__name__}: {first_line(e)}") from None
    try:
        ResumeState.model_validate(state)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"])) or "the top level"
        raise DistilkitError(f"cannot resume from {path}: not a distilkit training state ('{where}': "
                             f"{err['msg'].lower()})") from None  # fmt: skip
    return state
