"""predict (image, folder, glob, video), export-onnx parity, fps on both backends, and their bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import ok, one_error_line, write_video
from distilkit.cli import app
from distilkit.engine.predictor import OnnxModel, Predictor, load_backend
from distilkit.engine.sources import video_frames

runner = CliRunner()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from distilkit.data.synth import CAMERA, generate

    folder = tmp_path_factory.mktemp("imgs")
    for i in range(3):
        Image.fromarray(generate(CAMERA, "val", i, size=(64, 128))[0]).save(folder / f"f{i}.png")
    return folder


def test_predict_image_folder_glob_and_masks_decode(tiny_ckpt, images, tmp_path):
    ok(
        runner.invoke(
            app, ["predict", str(images / "f0.png"), "--weights", str(tiny_ckpt), "--out", str(tmp_path / "a")]
        )
    )
    ok(runner.invoke(app, ["predict", str(images), "--weights", str(tiny_ckpt), "--out", str(tmp_path / "b")]))
    ok(
        runner.invoke(
            app, ["predict", str(images / "f*.png"), "--weights", str(tiny_ckpt), "--out", str(tmp_path / "c")]
        )
    )
    assert sorted(p.name for p in (tmp_path / "b/masks").iterdir()) == ["f0.png", "f1.png", "f2.png"]
    assert len(json.loads((tmp_path / "c/predictions.json").read_text())["outputs"]) == 3
    assert (tmp_path / "a/overlays/f0.jpg").is_file()
    # The palette PNG is a lossless label map: its pixel values are exactly the predicted class ids.
    model, meta = load_backend(tiny_ckpt, torch.device("cpu"))
    image = np.asarray(Image.open(images / "f1.png").convert("RGB"))
    expected = Predictor(model, meta, torch.device("cpu"))([image])[0]
    mask = Image.open(tmp_path / "b/masks/f1.png")
    assert mask.mode == "P" and np.array_equal(np.asarray(mask), expected)
    assert mask.getpalette()[13 * 3 : 13 * 3 + 3] == [0, 0, 142]  # car's Cityscapes colour


def test_predict_outputs_never_collide_and_keep_the_layout(tiny_ckpt, images, tmp_path):
    """Two cameras with the same frame names, x.png beside x.jpg, a file reached twice by a glob: one output each."""
    src = tmp_path / "src"
    for cam in ("cam1", "cam2"):
        (src / cam).mkdir(parents=True)
        (src / cam / "0001.png").write_bytes((images / "f0.png").read_bytes())
    Image.open(images / "f1.png").convert("RGB").save(src / "cam1" / "0001.jpg")
    (src / "link").symlink_to(src / "cam2")  # cam2's frame reachable twice
    (src / "cam1" / "up").symlink_to(src)  # a loop: ** must not walk it
    ok(runner.invoke(app, ["predict", f"{src}/**/*", "--weights", str(tiny_ckpt), "--out", str(tmp_path / "p")]))
    masks = sorted(p.relative_to(tmp_path / "p/masks").as_posix() for p in (tmp_path / "p/masks").rglob("*.png"))
    assert masks == ["cam1/0001_jpg.png", "cam1/0001_png.png", "cam2/0001.png"]
    outputs = json.loads((tmp_path / "p/predictions.json").read_text())["outputs"]
    assert len({o["mask"] for o in outputs}) == len(outputs) == 3


def test_predict_video_streams_and_keeps_the_frame_rate(tiny_ckpt, tmp_path):
    video = write_video(tmp_path / "clip.mp4", frames=7, rate=5)
    ok(
        runner.invoke(
            app, ["predict", str(video), "--weights", str(tiny_ckpt), "--out", str(tmp_path / "v"), "--batch", "3"]
        )
    )
    frames, rate, _ = video_frames(tmp_path / "v/clip.mp4")
    assert rate == 5 and sum(1 for _ in frames) == 7
    summary = json.loads((tmp_path / "v/predictions.json").read_text())
    assert summary["count"] == 7 and summary["kind"] == "video"


def test_export_onnx_parity_and_onnx_backend(tiny_ckpt, images, tmp_path):
    onnx_path = tmp_path / "m.onnx"
    result = ok(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--out", str(onnx_path)]))
    assert "argmax agreement 100" in result.stdout or "argmax agreement 99.9" in result.stdout
    import onnx

    proto = onnx.load(str(onnx_path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["names"])[0] == "road" and "distilkit-model" in meta
    # dynamic batch / height / width: another size runs and agrees with PyTorch
    model, _ = load_backend(tiny_ckpt, torch.device("cpu"))
    x = torch.randn(2, 3, 96, 160)
    assert torch.allclose(OnnxModel(onnx_path, torch.device("cpu"))(x), model(x), atol=1e-3)
    ok(runner.invoke(app, ["predict", str(images), "--weights", str(onnx_path), "--out", str(tmp_path / "o")]))
    torch_masks = tmp_path / "t"
    ok(runner.invoke(app, ["predict", str(images), "--weights", str(tiny_ckpt), "--out", str(torch_masks)]))
    a, b = np.asarray(Image.open(tmp_path / "o/masks/f2.png")), np.asarray(Image.open(torch_masks / "masks/f2.png"))
    assert (a == b).mean() > 0.999
    one_error_line(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--out", str(onnx_path)]), "exists")
    fps_args = ["fps", str(onnx_path), "--imgsz", "64", "128", "--iters", "2", "--warmup", "0"]
    ok(runner.invoke(app, [*fps_args, "--out", str(tmp_path / "f")]))
    rows = json.loads((tmp_path / "f" / "fps.json").read_text())["rows"]
    assert [r["backend"] for r in rows] == ["onnx"]  # the .onnx file alone, no checkpoint
    static = tmp_path / "static.onnx"
    ok(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--static", "--out", str(static)]))
    assert [d.dim_value for d in onnx.load(str(static)).graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 128]


def test_fps_both_backends(tiny_ckpt, tmp_path):
    args = [
        "fps",
        "--model",
        "segformer-b0",
        "--imgsz",
        "64",
        "128",
        "--backend",
        "all",
        "--iters",
        "2",
        "--warmup",
        "1",
    ]
    result = ok(runner.invoke(app, [*args, "--out", str(tmp_path / "f")]))
    rows = json.loads((tmp_path / "f/fps.json").read_text())["rows"]
    assert {r["backend"] for r in rows} == {"torch", "onnx"}
    assert all(r["mean_ms"] > 0 and r["gflops"] > 0 and r["params"] > 0 for r in rows)
    assert "mean ms" in result.stdout
    two = ["fps", str(tiny_ckpt), "--model", "x", "--imgsz", "64", "128", "--iters", "2", "--warmup", "0"]
    ok(runner.invoke(app, [*two, "--out", str(tmp_path / "g")]))


def test_fps_times_a_checkpoint_at_its_training_size_and_counts_exports(tiny_ckpt, tmp_path):
    from distilkit.engine.checkpoint import read_meta

    onnx_file = tmp_path / "m.onnx"
    ok(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--out", str(onnx_file)]))
    ok(runner.invoke(app, ["fps", str(onnx_file), str(tiny_ckpt), "--iters", "2", "--warmup", "0",
                           "--out", str(tmp_path / "f")]))  # fmt: skip
    report = json.loads((tmp_path / "f/fps.json").read_text())
    assert report["imgsz"] == list(read_meta(tiny_ckpt)["imgsz"])  # not 512x512
    by_backend = {(r["model"], r["backend"]): r for r in report["rows"]}
    exported = by_backend[next(k for k in by_backend if "m.onnx" in k[0])]
    eager = by_backend[next(k for k in by_backend if k[1] == "torch")]
    assert exported["params"] == eager["params"] > 0 and exported["gflops"] == pytest.approx(eager["gflops"])


def test_noisy_timings_are_flagged():
    from distilkit.engine.speed import noisy

    assert noisy({"mean_ms": 1629, "median_ms": 1185, "p90_ms": 2642})  # the first-hour report's figures
    assert not noisy({"mean_ms": 10.2, "median_ms": 10.0, "p90_ms": 11.0})


def test_images_are_read_as_displayed_whatever_their_bit_depth(tmp_path):
    """A 16-bit grey PNG is scaled, not clipped to white; EXIF orientation is applied to image and label alike."""
    from distilkit.data.base import read_image, read_label_raw
    from distilkit.errors import DistilkitError

    grey16 = (np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 32).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    got = read_image(tmp_path / "g16.png")
    assert got.shape == (32, 64, 3) and np.array_equal(got[..., 0], np.round(grey16 / 257).astype(np.uint8))
    photo = np.zeros((20, 40, 3), np.uint8)
    photo[:, :10] = 255  # a white band on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(photo).save(tmp_path / "rot.jpg", exif=exif, quality=100)
    label = np.zeros((20, 40), np.uint8)
    label[:, :10] = 1
    Image.fromarray(label).save(tmp_path / "rot_label.png", exif=exif)
    shown, shown_label = read_image(tmp_path / "rot.jpg"), read_label_raw(tmp_path / "rot_label.png")
    assert shown.shape == (40, 20, 3) and shown_label.shape == (40, 20)
    assert shown[:10].mean() > 200 and shown[-10:].mean() < 50  # the band is now on top
    assert np.array_equal(shown_label > 0, shown[..., 0] > 127)
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(DistilkitError, match="floating-point"):
        read_image(tmp_path / "f.tif")
