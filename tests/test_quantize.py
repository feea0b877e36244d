"""INT8 and FP16 exports: calibrated on real images, metadata, used as they are by evaluate / predict / fps, and
one clear line (with nothing overwritten) for each bad request."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import ok, one_error_line
from distilkit.cli import app
from distilkit.engine.predictor import OnnxModel
from distilkit.engine.quantize import shape_nodes, submodules

runner = CliRunner()


def meta_of(path) -> dict:
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["distilkit-model"])


@pytest.fixture(scope="module")
def int8(tiny_ckpt, tiny_data, tmp_path_factory):
    """An INT8 export of the untrained tiny model, calibrated on the tiny folder set (agreement of an untrained
    model's near-tied logits is low, hence the lowered threshold; trained models: docs/benchmarks.md)."""
    path = tmp_path_factory.mktemp("int8") / "m.int8.onnx"
    args = ["export-onnx", str(tiny_ckpt), "--int8", "--calib-data", "folder", "--data-root", str(tiny_data),
            "--calib-images", "4", "--min-agreement", "0.5", "--out", str(path)]  # fmt: skip
    result = ok(runner.invoke(app, args))
    assert "int8 vs fp32 on 3 real images" in result.stdout  # the folder's val split, not the calibration images
    return path


def test_int8_file_is_quantised_and_says_how(int8):
    proto = onnx.load(str(int8))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = meta_of(int8)
    assert meta["precision"] == "int8" and meta["class_names"][0] == "road"
    assert meta["calibration"] == {"data": "folder", "split": "train", "images": 4, "method": "minmax", "seed": 0,
                                   "keep_float": []}  # fmt: skip
    # the shape arithmetic stayed float: no Q/DQ pair feeds a node that computes sizes (a Shape reads data)
    names = set(shape_nodes(proto))
    produced_by = {o: n for n in proto.graph.node for o in n.output}
    for node in proto.graph.node:
        if node.name in names and node.op_type != "Shape":
            assert all(produced_by.get(i) is None or produced_by[i].op_type != "DequantizeLinear" for i in node.input)


def test_int8_keep_float_leaves_the_named_layers_in_float(tiny_ckpt, tiny_data, tmp_path):
    # what rescued DeepLabV3+-Lite0 (93.7% -> 98.6% agreement with its stem and first block in float)
    path = tmp_path / "k.int8.onnx"
    base = ["export-onnx", str(tiny_ckpt), "--int8", "--calib-data", "folder", "--data-root", str(tiny_data),
            "--calib-images", "2", "--min-agreement", "0.5"]  # fmt: skip
    ok(runner.invoke(app, [*base, "--keep-float", "/segmentation_head", "--out", str(path)]))
    proto = onnx.load(str(path))
    produced_by = {o: n for n in proto.graph.node for o in n.output}

    def quantised(node) -> bool:  # its weights come through a DequantizeLinear (int8 weights)
        return node.input[1] in produced_by and produced_by[node.input[1]].op_type == "DequantizeLinear"

    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    head = [n for n in convs if n.name.startswith("/segmentation_head/")]
    assert head and not any(quantised(n) for n in head)
    assert any(quantised(n) for n in convs if n not in head)  # the rest is INT8
    assert meta_of(path)["calibration"]["keep_float"] == ["/segmentation_head"]
    bad = tmp_path / "bad.onnx"
    one_error_line(runner.invoke(app, [*base, "--keep-float", "/no/such/module", "--out", str(bad)]),
                   "--keep-float /no/such/module")  # fmt: skip
    one_error_line(runner.invoke(app, [*base, "--keep-float", "/nohead", "--out", str(bad)]), "/segmentation_head")
    assert not bad.exists()


def test_a_prefix_that_names_nothing_is_answered_with_the_modules_under_its_deepest_known_parent():
    names = ["/encoder/model/conv_stem/Conv", "/encoder/model/bn1/Relu", "/encoder/model/blocks.0/conv/Conv",
             "/encoder/Add", "/decoder/conv/Conv", "/segmentation_head/Conv", "Shape_1"]  # fmt: skip
    # in graph order (the stem first, where it is looked for), not sorted; ops directly under a parent are no module
    assert submodules(names, "/encoder/model/stem") == (
        "/encoder/model", ["/encoder/model/conv_stem", "/encoder/model/bn1", "/encoder/model/blocks.0"])  # fmt: skip
    assert submodules(names, "/encoder/nope/x") == ("/encoder", ["/encoder/model"])
    assert submodules(names, "/nope") == ("", ["/encoder", "/decoder", "/segmentation_head"])


def test_int8_runs_at_other_sizes_and_close_to_fp32(int8, tiny_ckpt, tmp_path):
    from distilkit.engine.checkpoint import load_model

    model, _ = load_model(tiny_ckpt)
    x = torch.randn(2, 3, 96, 160)  # not the export size: dynamic shapes survive quantisation
    q = OnnxModel(int8, torch.device("cpu"))(x)
    with torch.no_grad():
        ref = model(x)
    assert q.shape == ref.shape and (q - ref).abs().mean() < 0.2 * ref.abs().mean()  # noise: outside calibration


def test_evaluate_predict_fps_take_the_int8_file(int8, tiny_ckpt, tiny_data, tmp_path):
    common = ["--data", "folder", "--data-root", str(tiny_data), "--workers", "0"]
    ok(runner.invoke(app, ["evaluate", str(int8), *common, "--out", str(tmp_path / "e8")]))
    ok(runner.invoke(app, ["evaluate", str(tiny_ckpt), *common, "--out", str(tmp_path / "e32")]))
    r8, r32 = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("e8", "e32"))
    assert r8["images"] == r32["images"] == 3 and abs(r8["pixel_acc"] - r32["pixel_acc"]) < 0.2
    image = tmp_path / "x.png"
    Image.fromarray(np.full((64, 128, 3), 90, np.uint8)).save(image)
    ok(runner.invoke(app, ["predict", str(image), "--weights", str(int8), "--out", str(tmp_path / "p")]))
    assert (tmp_path / "p/masks/x.png").is_file()
    ok(runner.invoke(app, ["fps", str(int8), "--imgsz", "64", "128", "--iters", "2", "--warmup", "0",
                           "--out", str(tmp_path / "f")]))  # fmt: skip
    assert [r["backend"] for r in json.loads((tmp_path / "f/fps.json").read_text())["rows"]] == ["onnx"]


def test_fp16_export(tiny_ckpt, tmp_path):
    path = tmp_path / "m.fp16.onnx"
    ok(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--fp16", "--out", str(path)]))
    proto = onnx.load(str(path))
    assert meta_of(path)["precision"] == "fp16"
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # callers feed fp32
    assert OnnxModel(path, torch.device("cpu"))(torch.randn(1, 3, 64, 128)).dtype == torch.float32


def write_folder(root, classes: list[str], n: int, size=(64, 128)):
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((*size, 3), 100, np.uint8)).save(root / "images" / split / f"{i}.png")
            Image.fromarray(np.zeros(size, np.uint8)).save(root / "masks" / split / f"{i}.png")
    (root / "classes.json").write_text(json.dumps({"names": classes}))
    return root


def test_bad_int8_requests_one_line_each_and_nothing_overwritten(tiny_ckpt, tiny_data, tmp_path):
    base = ["export-onnx", str(tiny_ckpt)]
    calib = ["--int8", "--calib-data", "folder", "--calib-images", "2"]
    from distilkit.data.cityscapes import CITYSCAPES_CLASSES

    other = write_folder(tmp_path / "other", ["a", "b", "c"], 2)
    empty = write_folder(tmp_path / "empty", list(CITYSCAPES_CLASSES), 0)
    tiny_images = write_folder(tmp_path / "tiny", list(CITYSCAPES_CLASSES), 2, size=(16, 32))
    cases = {
        "another label space": ([*calib, "--data-root", str(other)], "calibrate on the model's own data"),
        "an empty calibration set": ([*calib, "--data-root", str(empty)], "has no images"),
        "images far below the training size": ([*calib, "--data-root", str(tiny_images)], "under half"),
        "no calibration images": (
            ["--int8", "--calib-images", "0", "--calib-data", "folder", "--data-root", str(tiny_data)],
            "--calib-images 0: expected an integer >= 1",
        ),  # fmt: skip
        "an unknown calibration method": (["--int8", "--calib-method", "best"], "--calib-method best"),
        "two precisions": (["--int8", "--fp16"], "choose one precision"),
        "an impossible agreement": (["--fp16", "--min-agreement", "1.5"], "--min-agreement 1.5"),
    }
    target = tmp_path / "keep.onnx"
    target.write_bytes(b"the user's file")
    for name, (flags, match) in cases.items():
        result = runner.invoke(app, [*base, *flags, "--out", str(target), "--exist-ok"])
        one_error_line(result, match)
        assert target.read_bytes() == b"the user's file", name
    # a verification that fails leaves the user's file as it was, too
    strict = [*calib, "--data-root", str(tiny_data), "--min-agreement", "1.0", "--out", str(target), "--exist-ok"]
    one_error_line(runner.invoke(app, [*base, *strict]), "verification failed")
    assert target.read_bytes() == b"the user's file"
    one_error_line(runner.invoke(app, [*base, "--fp16", "--out", str(target)]), "exists")


# ---- OpenVINO IR -----------------------------------------------------------------------------------------------
def test_openvino_ir_fp32_and_int8_run_everywhere(tiny_ckpt, tiny_data, tmp_path):
    pytest.importorskip("openvino")
    xml = tmp_path / "m.xml"
    result = ok(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--format", "openvino", "--out", str(xml)]))
    assert "OpenVINO vs onnxruntime" in result.stdout and xml.with_suffix(".bin").is_file()
    from distilkit.engine.predictor import OpenVinoModel, load_backend

    model, meta = load_backend(xml, torch.device("cpu"))
    assert isinstance(model, OpenVinoModel) and meta["precision"] == "fp32" and meta["format"] == "openvino"
    from distilkit.engine.checkpoint import load_model

    ref, _ = load_model(tiny_ckpt)
    x = torch.randn(2, 3, 96, 160)  # dynamic shapes, like the ONNX export
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-3)
    q = tmp_path / "m.int8.xml"
    ok(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--format", "openvino", "--int8", "--calib-data", "folder",
                           "--data-root", str(tiny_data), "--calib-images", "4", "--min-agreement", "0.5",
                           "--out", str(q)]))  # fmt: skip
    assert load_backend(q, torch.device("cpu"))[1]["calibration"]["images"] == 4
    common = ["--data", "folder", "--data-root", str(tiny_data), "--workers", "0"]
    ok(runner.invoke(app, ["evaluate", str(q), *common, "--out", str(tmp_path / "e")]))
    image = tmp_path / "x.png"
    Image.fromarray(np.full((64, 128, 3), 90, np.uint8)).save(image)
    ok(runner.invoke(app, ["predict", str(image), "--weights", str(xml), "--out", str(tmp_path / "p")]))
    ok(runner.invoke(app, ["fps", str(xml), str(q), "--imgsz", "64", "128", "--iters", "2", "--warmup", "0",
                           "--out", str(tmp_path / "f")]))  # fmt: skip
    rows = json.loads((tmp_path / "f/fps.json").read_text())["rows"]
    assert [r["backend"] for r in rows] == ["openvino", "openvino"]


def test_openvino_missing_or_unknown_format_is_one_line(tiny_ckpt, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    one_error_line(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--format", "tflite", "--out",
                                       str(tmp_path / "m.xml")]), "--format tflite")  # fmt: skip
    monkeypatch.setattr(builtins, "__import__", no_openvino)
    out = tmp_path / "m.xml"
    one_error_line(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--format", "openvino", "--out", str(out)]),
                   "pip install")  # fmt: skip
    assert not out.exists() and not list(tmp_path.iterdir())
