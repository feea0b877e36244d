"""Lower-precision ONNX exports: INT8 (onnxruntime's post-training static quantisation) and FP16.

INT8: QDQ format, per-channel int8 weights, uint8 activations (the U8S8 kernels of x86 VNNI), calibrated on a
seeded sample of real images preprocessed exactly as `evaluate` and `predict` preprocess them. The graph's
shape arithmetic (TF "same" padding sizes, resize targets) is left in float: quantising it would round image
sizes. FP16: every float tensor in half precision, inputs and outputs kept fp32 so the same caller feeds it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from distilkit.data.transforms import base_scale, normalize, resize_image, to_tensor
from distilkit.engine.checkpoint import FORMAT, check_label_space
from distilkit.errors import DistilkitError
from distilkit.utils.files import claim

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def shape_nodes(model) -> list[str]:
    """Names of the nodes that compute shapes (everything fed only by Shape nodes and constants)."""
    graph = model.graph
    constants = {i.name for i in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output
    }
    derived, names = set(), []
    for node in graph.node:  # ONNX graphs are in topological order
        inputs = [i for i in node.input if i and i not in constants]
        if node.op_type == "Shape" or (inputs and all(i in derived for i in inputs)):
            derived.update(node.output)
            names.append(node.name)
    return names


def kept_float(model, prefixes: list[str]) -> list[str]:
    """Names of the nodes under each node-name prefix (`/encoder/model/conv_stem`: that module's nodes), to be
    left in float; a prefix that matches nothing is refused with the modules under its deepest known parent."""
    names = [n.name for n in model.graph.node]
    kept = []
    for prefix in prefixes:
        head = "/" + prefix.strip("/")
        found = [n for n in names if n == head or n.startswith(head + "/")]
        if not found:
            parent, modules = submodules(names, head)
            shown = ", ".join(modules[:16]) + (", ..." if len(modules) > 16 else "")
            raise DistilkitError(f"--keep-float {prefix}: no node of the model is named so; module prefixes"
                                 f"{' under ' + parent if parent else ''}: {shown}")  # fmt: skip
        kept += found
    return kept


def submodules(names: list[str], head: str) -> tuple[str, list[str]]:
    """(the deepest module `head` lies under, the modules one level below it in graph order): what to offer
    instead of a prefix that names nothing (the graph's order puts the stem first, where it is looked for)."""
    parts = head.strip("/").split("/")
    parent = ""
    for i in range(len(parts) - 1, 0, -1):
        candidate = "/" + "/".join(parts[:i])
        if any(n.startswith(candidate + "/") for n in names):
            parent = candidate
            break
    below = [n[len(parent) + 1 :].split("/") for n in names if n.startswith(parent + "/")]
    return parent, list(dict.fromkeys(f"{parent}/{rest[0]}" for rest in below if len(rest) > 1))


def calibration_inputs(meta: dict, dataset, n: int, seed: int, input_hw: tuple[int, int]) -> list[np.ndarray]:
    """`n` seeded images of `dataset`, normalised with the model's mean/std, resized to the export's input."""
    check_label_space(meta["class_names"], dataset.info.class_names, f"the model ({meta['dataset']})",
                      f"calibration set '{dataset.info.name}'", "calibrate on the model's own data")  # fmt: skip
    if n < 1:
        raise DistilkitError(f"--calib-images {n}: at least 1 image is needed")
    if len(dataset) == 0:
        raise DistilkitError(f"calibration set '{dataset.info.name}' ({dataset.split}) has no images")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    inputs = []
    for i in order:
        image = dataset.load(i)[0]
        h, w = image.shape[:2]
        if base_scale(h, w, tuple(meta["imgsz"])) > 2:
            raise DistilkitError(
                f"calibration image {i} of '{dataset.info.name}' is {h}x{w}, under half the model's training "
                f"size {meta['imgsz'][0]}x{meta['imgsz'][1]}: its activations would not be the deployed ones"
            )
        x = normalize(to_tensor(image), meta["mean"], meta["std"])
        inputs.append(resize_image(x[None], input_hw).numpy())
    return inputs


def _with_meta(path: Path, meta: dict) -> None:
    import onnx

    proto = onnx.load(str(path))
    for entry in proto.metadata_props:
        if entry.key == FORMAT:
            entry.value = json.dumps(meta)
    onnx.save(proto, str(path))


def quantize_int8(
    src: Path, dst: Path, meta: dict, inputs: list[np.ndarray], method: str, keep_float: list[str] = ()
) -> None:
    """Write `dst`, an INT8 QDQ model of the fp32 `src`, calibrated on `inputs` (N x 3 x H x W float32); the
    nodes under the `keep_float` name prefixes stay float (layers too sensitive to 256 levels)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    claim(dst)
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}  # fmt: skip

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter({"images": x} for x in inputs)

        def get_next(self):
            return next(self.batches, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a line for every tensor it keeps per-tensor
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # folds BN, fuses, infers shapes
            graph = onnx.load(str(pre))
            quantize_static(
                str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=methods[method],
                nodes_to_exclude=shape_nodes(graph) + kept_float(graph, list(keep_float)),
            )  # fmt: skip
    finally:
        root.setLevel(level)
    if not any(n.op_type == "QuantizeLinear" for n in onnx.load(str(dst)).graph.node):
        raise DistilkitError(f"no operator of {src.name} could be quantised to INT8; export fp32 or --fp16 instead")
    _with_meta(dst, meta)


def convert_fp16(src: Path, dst: Path, meta: dict) -> None:
    """Write `dst`, the fp16 version of `src` (inputs and outputs stay fp32)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    claim(dst)
    proto = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(proto, str(dst))
    _with_meta(dst, meta)
