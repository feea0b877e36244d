"""ONNX export of a checkpoint, with its metadata, checked by onnx.checker and verified in onnxruntime."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from distilkit.data.transforms import normalize, pad_to_multiple, to_tensor
from distilkit.engine.checkpoint import FORMAT
from distilkit.engine.predictor import OnnxModel
from distilkit.errors import DistilkitError
from distilkit.utils.files import atomic_write

AXES = {0: "batch", 2: "height", 3: "width"}


def export_onnx(model, meta: dict, path: Path, opset: int = 17, dynamic: bool = True, batch: int = 1) -> Path:
    """Trace `model` at its training size (padded to a multiple of 32) and write a checked ONNX file."""
    import onnx

    x, _ = pad_to_multiple(torch.randn(batch, 3, *meta["imgsz"]), 32)
    meta = {**meta, "onnx": {"opset": opset, "dynamic": dynamic, "input_shape": list(x.shape)}}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(
                model.eval(), (x,), str(tmp), input_names=["images"], output_names=["logits"],
                opset_version=opset, dynamo=False, dynamic_axes={"images": AXES, "logits": AXES} if dynamic else None,
            )  # fmt: skip
        proto = onnx.load(str(tmp))
        for key, value in ((FORMAT, json.dumps(meta)), ("names", json.dumps(meta["class_names"]))):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))

    try:
        atomic_write(path, write)
    except (RuntimeError, ValueError, onnx.checker.ValidationError) as e:
        raise DistilkitError(f"ONNX export failed at opset {opset}: {str(e).splitlines()[0]}") from None
    return path


@torch.no_grad()
def verify(model, path: Path, inputs: list[torch.Tensor], min_agreement: float = 0.999) -> dict:
    """onnxruntime against PyTorch: the largest absolute logit difference and the argmax agreement."""
    session = OnnxModel(path, torch.device("cpu"))
    diffs, agree, total = [], 0, 0
    for x in inputs:
        ref, out = model(x).float(), session(x)
        diffs.append((ref - out).abs().max().item())
        agree += (ref.argmax(1) == out.argmax(1)).sum().item()
        total += ref.argmax(1).numel()
    result = {"max_abs_diff": max(diffs), "argmax_agreement": agree / total, "inputs": len(inputs)}
    result["passed"] = result["argmax_agreement"] >= min_agreement
    return result


def verification_inputs(meta: dict, real: np.ndarray, dynamic: bool, batch: int) -> list[torch.Tensor]:
    """Random inputs and one real image at the export size; with dynamic axes, also other sizes and batch."""
    h, w = pad_to_multiple(torch.empty(1, 1, *meta["imgsz"]), 32)[0].shape[-2:]
    g = torch.Generator().manual_seed(0)
    real_x = torch.nn.functional.interpolate(to_tensor(real)[None], size=(h, w), mode="bilinear")
    real_x = normalize(real_x[0], meta["mean"], meta["std"])[None].repeat(batch, 1, 1, 1)
    inputs = [torch.randn(batch, 3, h, w, generator=g), real_x]
    if dynamic:
        inputs.append(torch.randn(batch + 1, 3, h + 32, w - 32 if w > 32 else w + 32, generator=g))
    return inputs


def real_image(meta: dict, data: str | None, data_root) -> np.ndarray:
    """A real input for verification: the first image of `data` (or the checkpoint's dataset), else a
    generated street scene when that dataset's files are not at hand."""
    from distilkit.data import build_dataset
    from distilkit.data.synth import GAME, generate

    for name in [n for n in (data, meta.get("val_data"), meta.get("dataset")) if n]:
        try:
            return build_dataset(name, "val", data_root).load(0)[0]
        except (DistilkitError, IndexError):
            continue
    return generate(GAME, "val", 0)[0]


def export_and_verify(
    weights: Path, out: Path | None, opset: int, static: bool, batch: int, data: str | None, data_root, exist_ok: bool
) -> dict:
    """Export, check, then verify against PyTorch; raises if argmax agreement is under 99.9%."""
    from distilkit.engine.checkpoint import load_model

    model, meta = load_model(weights, "cpu")
    path = Path(out) if out else Path(weights).with_suffix(".onnx")
    if path.exists() and not exist_ok:
        raise DistilkitError(f"{path} exists; pass --out PATH or --exist-ok to replace it")
    export_onnx(model, meta, path, opset, dynamic=not static, batch=batch)
    inputs = verification_inputs(meta, real_image(meta, data, data_root), dynamic=not static, batch=batch)
    result = {"onnx": str(path), "opset": opset, "dynamic": not static, **verify(model, path, inputs)}
    if not result["passed"]:
        raise DistilkitError(
            f"verification failed: onnxruntime agrees with PyTorch on {100 * result['argmax_agreement']:.3f}% "
            f"of pixels (< 99.9%); max |logit diff| {result['max_abs_diff']:.2e}. Try another --opset"
        )
    return result
