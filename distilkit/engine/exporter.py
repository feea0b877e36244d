"""ONNX export of a checkpoint, with its metadata, checked by onnx.checker and verified in onnxruntime."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from distilkit.data.transforms import normalize, pad_to_multiple, to_tensor
from distilkit.engine.checkpoint import FORMAT
from distilkit.engine.inference import class_map
from distilkit.engine.predictor import OPENVINO_KEY, OnnxModel, import_openvino, load_backend
from distilkit.errors import DistilkitError, first_line
from distilkit.utils.boundary import is_oom
from distilkit.utils.files import WriteGuard, atomic_write, write_guard
from distilkit.utils.limits import check_fits

AXES = {0: "batch", 2: "height", 3: "width"}


def export_onnx(model, meta: dict, path: Path, opset: int = 17, dynamic: bool = True, batch: int = 1) -> dict:
    """Trace `model` at its training size (padded to a multiple of 32) and write a checked ONNX file; returns
    the metadata written into it."""
    import onnx

    check_fits(batch, *meta["imgsz"], training=False)  # the traced input: refused before minutes of tracing
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
        if is_oom(e):  # the boundary's out-of-memory line says what to try
            raise
        raise DistilkitError(f"ONNX export failed at opset {opset}: {first_line(e)}") from None
    return meta


@torch.no_grad()
def verify(model, path: Path, inputs: list[torch.Tensor], min_agreement: float = 0.999) -> dict:
    """The exported file at `path` (ONNX or OpenVINO IR) against `model` (PyTorch, or another exported model):
    the largest absolute logit difference and the argmax agreement."""
    session = load_backend(path, torch.device("cpu"))[0]
    diffs, agree, total = [], 0, 0
    for x in inputs:
        ref, out = model(x).float(), session(x)
        diffs.append((ref - out).abs().max().item())
        agree += (class_map(ref) == class_map(out)).sum().item()
        total += ref[:, 0].numel()
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
    """A real input for verification: the first image of `data`, else of the checkpoint's own data set. A data set
    the user named must load (one line when it cannot: a typo or a wrong --data-root would otherwise verify on
    something else); without --data, a generated street scene stands in, said in a warning."""
    from distilkit.data.registry import dataset_names
    from distilkit.data.synth import GAME, generate
    from distilkit.utils.console import warn

    if data is not None:
        if data not in dataset_names():
            raise DistilkitError(f"--data {data}: unknown dataset; known: {', '.join(dataset_names())}")
        return _first_image(data, data_root)
    for name in dict.fromkeys(n for n in (meta.get("val_data"), meta.get("dataset")) if n):
        try:
            return _first_image(name, data_root)
        except DistilkitError:
            continue
    warn(f"verifying on a generated street scene: the model's data set {meta.get('dataset')} is not at hand "
         "(--data NAME --data-root DIR to verify on a real image)")  # fmt: skip
    return generate(GAME, "val", 0)[0]


def _first_image(name: str, data_root) -> np.ndarray:
    """The first image of data set `name` (its val split, else its train split), or one line saying why not."""
    from distilkit.data import build_dataset

    error = None
    for split in ("val", "train"):
        try:
            return build_dataset(name, split, data_root).load(0)[0]
        except IndexError:
            error = error or f"its {split} split holds no image"
        except DistilkitError as e:
            error = error or str(e)
    raise DistilkitError(f"--data {name}: no image to verify the export on: {error}")


PRECISIONS = ("fp32", "fp16", "int8")
FORMATS = {"onnx": ".onnx", "openvino": ".xml"}  # --format -> file suffix
# argmax agreement with the fp32 model under which an export fails: fp32 and fp16 only differ by rounding; INT8
# rounds every activation to 256 levels, which flips pixels on class boundaries: a trained CamVid student kept
# 98.6% of its pixels at 0.3 mIoU lost, an untrained one 90.8% (docs/benchmarks.md, INT8 section)
MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.995, "int8": 0.97}


def export_and_verify(
    weights: Path, out: Path | None, opset: int, static: bool, batch: int, data: str | None, data_root, exist_ok: bool,
    precision: str = "fp32", calib: dict | None = None, min_agreement: float | None = None, fmt: str = "onnx",
) -> dict:  # fmt: skip
    """Export, check, then verify: fp32 against PyTorch (random inputs and a real image); fp16 and INT8 against
    that fp32 export on real images; an OpenVINO IR (`fmt`) against the ONNX file it was converted from. Raises
    under the argmax agreement threshold, leaving no file behind.

    `calib` (INT8): {"data", "split", "images", "method", "seed", "keep_float"}: `images` seeded images of that
    split calibrate, the nodes under the `keep_float` name prefixes stay float;
    the model is then checked on images of the data's val split (when calibration used another split)."""
    from distilkit.engine.checkpoint import load_model
    from distilkit.engine.quantize import CALIBRATION_METHODS, calibration_inputs, convert_fp16, quantize_int8

    if fmt not in FORMATS:
        raise DistilkitError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt == "openvino":
        import_openvino()  # one line now, before any work, when the package is missing
    if precision not in PRECISIONS:
        raise DistilkitError(f"unknown precision {precision}: expected one of {', '.join(PRECISIONS)}")
    if precision == "int8" and calib["method"] not in CALIBRATION_METHODS:
        raise DistilkitError(f"--calib-method {calib['method']}: expected one of {', '.join(CALIBRATION_METHODS)}")
    if precision == "int8" and calib["images"] < 1:  # refused before the fp32 export, not after it
        raise DistilkitError(f"--calib-images {calib['images']}: at least 1 image is needed")
    threshold = min_agreement if min_agreement is not None else MIN_AGREEMENT[precision]
    if not 0 < threshold <= 1:
        raise DistilkitError(f"--min-agreement {threshold}: expected a fraction in (0, 1]")
    model, meta = load_model(weights, "cpu")
    ext = FORMATS[fmt]
    path = Path(out) if out else Path(weights).with_suffix(ext if precision == "fp32" else f".{precision}{ext}")
    # every file of the export (an IR's .bin too) claimed before any work: a refusal leaves nothing written, and
    # never the checkpoint being exported, --exist-ok or not (outside a command: a guard of its own)
    guard = write_guard.get() or WriteGuard(exist_ok=exist_ok)
    guard.protect(weights)
    guard.claim(path)
    real = real_image(meta, data, data_root)
    calib_set, check = calibration_sets(meta, calib, data_root) if precision == "int8" else (None, None)
    with tempfile.TemporaryDirectory() as tmp:  # the result reaches `path` only once it is verified
        fp32, low = Path(tmp) / "fp32.onnx", Path(tmp) / f"{precision}.onnx"
        written = export_onnx(model, {**meta, "precision": "fp32"}, fp32, opset, dynamic=not static, batch=batch)
        inputs = verification_inputs(meta, real, dynamic=not static, batch=batch)
        result = {"onnx": str(path), "opset": opset, "dynamic": not static, "precision": precision,
                  **verify(model, fp32, inputs)}  # fmt: skip
        _require(result, "onnxruntime agrees with PyTorch", MIN_AGREEMENT["fp32"], "Try another --opset")
        if precision != "fp32":
            lowmeta, hw = {**written, "precision": precision}, tuple(written["onnx"]["input_shape"][-2:])
            if precision == "int8":
                lowmeta["calibration"] = {k: calib[k] for k in ("data", "split", "images", "method", "seed",
                                                                "keep_float")}  # fmt: skip
                images = calibration_inputs(meta, calib_set, calib["images"], calib["seed"], hw)
                quantize_int8(fp32, low, lowmeta, images, calib["method"], calib["keep_float"])
            else:
                convert_fp16(fp32, low, lowmeta)
            held_out = calibration_inputs(meta, check, min(8, len(check)), 0, hw) if check else [inputs[1][:1]]
            vs = verify(OnnxModel(fp32, torch.device("cpu")), low, [torch.as_tensor(x) for x in held_out], threshold)
            result |= {f"vs_fp32_{k}": v for k, v in vs.items()}
            advice = (
                "Keep the most sensitive layers in float (--keep-float PREFIX; EfficientNet-Lite encoders: "
                "--keep-float /encoder/model/conv_stem --keep-float /encoder/model/bn1 --keep-float "
                "/encoder/model/blocks.0), calibrate on more images, try another --calib-method, or lower "
                "--min-agreement"
                if precision == "int8"
                else "Lower --min-agreement, or export fp32"
            )
            _require(vs, f"the {precision} model agrees with fp32", threshold, advice)
        final = low if precision != "fp32" else fp32
        if fmt == "openvino":
            checked = [torch.as_tensor(x) for x in held_out] if precision != "fp32" else inputs
            result |= to_openvino(final if precision == "int8" else fp32, path, precision, checked, threshold)
        else:
            atomic_write(path, lambda p: shutil.copyfile(final, p))
    return result


def to_openvino(src: Path, path: Path, precision: str, inputs: list[torch.Tensor], threshold: float) -> dict:
    """Convert the verified ONNX `src` to an OpenVINO IR at `path` (.xml, its weights in the .bin beside it),
    check it against `src`, and only then move both files into place (the .bin first: the .xml is the entry)."""
    ov = import_openvino()
    reference = OnnxModel(src, torch.device("cpu"))
    meta = {**reference.meta, "precision": precision, "format": "openvino"}
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "model.xml"
        model = ov.convert_model(str(src))
        model.set_rt_info(json.dumps(meta), OPENVINO_KEY)
        ov.save_model(model, str(xml), compress_to_fp16=precision == "fp16")
        vs = verify(reference, xml, inputs, threshold)
        _require(vs, "OpenVINO agrees with onnxruntime", threshold, "Export to ONNX instead")
        atomic_write(path.with_suffix(".bin"), lambda p: shutil.copyfile(xml.with_suffix(".bin"), p))
        atomic_write(path, lambda p: shutil.copyfile(xml, p))
    return {f"openvino_{k}": v for k, v in vs.items()}


def calibration_sets(meta: dict, calib: dict, data_root):
    """(calibration set, held-out check set or None); `calib["data"]` None means the model's own data set."""
    from distilkit.data import build_dataset

    calib["data"] = calib.get("data") or meta.get("train_data") or meta["dataset"]
    try:
        dataset = build_dataset(calib["data"], calib["split"], data_root)
    except DistilkitError as e:
        raise DistilkitError(
            f"INT8 calibration: {e} (choose the images with --calib-data NAME --data-root DIR)"
        ) from None
    check = None
    if calib["split"] != "val":
        try:
            check = build_dataset(calib["data"], "val", data_root)
        except DistilkitError:  # no val split: the verification image checks it
            check = None
    return dataset, check


def _require(result: dict, what: str, threshold: float, advice: str) -> None:
    if result["argmax_agreement"] < threshold:
        raise DistilkitError(
            f"verification failed: {what} on {100 * result['argmax_agreement']:.3f}% of pixels "
            f"(< {100 * threshold:.1f}%); max |logit diff| {result['max_abs_diff']:.2e}. {advice}"
        )
