"""HDL against hand-worked numbers, FastLiteSSNet, and the hdl command end to end."""

from __future__ import annotations

import math

import pytest
import torch
from typer.testing import CliRunner

from distilkit.cli import app
from distilkit.engine.config import TrainConfig
from distilkit.engine.trainer import Trainer
from distilkit.losses import dice_loss
from distilkit.losses.hdl import adapt, cs_divergence, feature_cs, pair_features, resize
from distilkit.methods import build_method
from distilkit.models import create_model


@pytest.fixture(scope="module")
def unet_ckpt(tmp_path_factory):
    """An untrained UNet teacher checkpoint in the synthetic class space (what HDL distils from)."""
    from distilkit.data.synth import SYNTH_INFO
    from distilkit.engine.checkpoint import model_meta, save_model

    torch.manual_seed(0)
    model = create_model("unet-resnet18", SYNTH_INFO.num_classes)
    path = tmp_path_factory.mktemp("unet") / "weights" / "best.safetensors"
    save_model(path, model, model_meta(model, SYNTH_INFO, (64, 128), "supervised"))
    return path


def test_cs_divergence_by_hand():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
    # <p,q> = 0.5, <p,p> = 0.5, <q,q> = 0.82
    expected = -math.log(0.5 / math.sqrt(0.5 * 0.82))
    assert cs_divergence(p.log(), q.log()).item() == pytest.approx(expected, rel=1e-6)
    assert cs_divergence(p.log(), p.log()).item() == pytest.approx(0.0, abs=1e-7)
    # scale invariance: a density times 3 (log + log 3) changes nothing
    assert cs_divergence((3 * p).log(), q.log()).item() == pytest.approx(expected, rel=1e-6)


def test_feature_cs_zero_iff_same_distribution_and_positive_otherwise():
    torch.manual_seed(0)
    f = torch.randn(2, 3, 4, 5)
    assert feature_cs(f, f).abs().max() < 1e-6
    assert feature_cs(f + 7.0, f).abs().max() < 1e-5  # a per-channel shift is the same softmax
    d = feature_cs(torch.randn(2, 3, 4, 5), f)
    assert d.shape == (2, 3) and (d > 0).all()
    # against the definition written out with probabilities, for one channel
    s = torch.randn(1, 1, 2, 3)  # a smaller student map, resized to the teacher's 4 x 5 first
    pt = torch.softmax(f[:1, :1].flatten(), 0)
    resized = torch.nn.functional.interpolate(s, size=(4, 5), mode="bilinear", align_corners=False)
    ps = torch.softmax(resized.flatten(), 0)
    by_hand = -math.log((ps @ pt).item() / math.sqrt((ps @ ps).item() * (pt @ pt).item()))
    assert feature_cs(s, f[:1, :1]).item() == pytest.approx(by_hand, rel=1e-5)


def test_dice_by_hand():
    # 2 classes, 3 pixels; the third is ignored. Probabilities of class 0: 0.8 and 0.3.
    p0 = torch.tensor([0.8, 0.3, 0.5])
    logits = torch.stack([p0.log(), (1 - p0).log()])[None, :, None, :]  # 1 x 2 x 1 x 3
    labels = torch.tensor([[[0, 1, 255]]])
    s = 1e-5
    # class 0: TP 0.8, FP 0.3, FN 0.2; class 1: TP 0.7, FP 0.2, FN 0.3
    d0 = (1.6 + s) / (1.6 + 0.3 + 0.2 + s)
    d1 = (1.4 + s) / (1.4 + 0.2 + 0.3 + s)
    assert dice_loss(logits, labels).item() == pytest.approx(1 - (d0 + d1) / 2, rel=1e-5)
    perfect = torch.tensor([[[[20.0, -20.0]], [[-20.0, 20.0]]]])
    assert dice_loss(perfect, torch.tensor([[[0, 1]]])).item() == pytest.approx(0.0, abs=1e-6)


def test_adapter_runs_at_the_smaller_size_with_the_same_result():
    """adapt() resizes before the 1x1 conv when shrinking: equal to conv-then-resize, values and gradients."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 5, 1)
    for src, dst in (((16, 32), (4, 8)), ((4, 8), (16, 32)), ((9, 7), (5, 3))):
        x = torch.randn(2, 6, *src, requires_grad=True)
        ours, ref = adapt(conv, x, torch.Size(dst)), resize(conv(x), torch.Size(dst))
        assert ours.shape[-2:] == dst and torch.allclose(ours, ref, atol=1e-5)
        w = torch.randn_like(ref)
        g_ours = torch.autograd.grad((ours * w).sum(), [x, conv.weight, conv.bias])
        g_ref = torch.autograd.grad((ref * w).sum(), [x, conv.weight, conv.bias])
        assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_ours, g_ref, strict=True))


def test_dice_against_its_three_count_definition():
    """The FP = sum(p) - TP, FN = sum(onehot) - TP shortcut against the products written out."""
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 4, 6, 5), torch.randint(0, 4, (2, 6, 5))
    labels[0, 0] = 255
    valid = (labels != 255)[:, None].float()
    p = torch.softmax(logits, 1) * valid
    oh = torch.nn.functional.one_hot(labels.clamp(max=3), 4).permute(0, 3, 1, 2).float() * valid
    for dims, per_sample in (((0, 2, 3), False), ((2, 3), True)):
        tp, fp, fn = (p * oh).sum(dims), (p * (1 - oh)).sum(dims), ((1 - p) * oh).sum(dims)
        expected = 1 - ((2 * tp + 1e-5) / (2 * tp + fp + fn + 1e-5)).mean(-1)
        assert torch.allclose(dice_loss(logits, labels, per_sample=per_sample), expected, atol=1e-6)


def test_fastlitessnet_halves_resolution_per_stage():
    model = create_model("fastlitessnet", 5, width=0.5).eval()
    for h, w in [(64, 128), (96, 96), (100, 130)]:
        logits, feats = model(torch.randn(2, 3, h, w), return_features=True)
        assert logits.shape == (2, 5, h, w)
        sizes = [tuple(f.shape[-2:]) for f in feats["encoder"]]
        expected, (eh, ew) = [], (h, w)
        for _ in range(4):
            eh, ew = math.ceil(eh / 2), math.ceil(ew / 2)
            expected.append((eh, ew))
        assert sizes == expected
        assert [f.shape[1] for f in feats["encoder"]] == [16, 32, 64, 128]
        assert feats["fused"].shape[-2:] == expected[-1]


def test_feature_pairs_align_from_the_deep_end():
    s, t = [torch.zeros(1)] * 5, [torch.zeros(1)] * 4
    assert pair_features(s, t) == [(1, 0), (2, 1), (3, 2), (4, 3)]
    assert pair_features(s, s) == [(i, i) for i in range(5)]


def hdl_cfg(tiny_data, teacher, **args) -> TrainConfig:
    return TrainConfig(command="t", method="hdl", data="folder", data_root=str(tiny_data), model="fastlitessnet",
                       model_args={"width": 0.25}, imgsz=(64, 128), batch=2, iters=4, optimizer="adam", lr=1e-2,
                       warmup=0, workers=0, device="cpu", method_args={"teacher": str(teacher), **args})  # fmt: skip


def one_batch(method):
    view = method.train_views()["train"]
    items = [view[(i, i)] for i in range(2)]
    return {"train": (torch.stack([x[0] for x in items]), torch.stack([x[1] for x in items]), torch.arange(2))}


def test_adapters_are_built_once_and_learn(tiny_data, unet_ckpt, tmp_path):
    torch.manual_seed(0)
    method = build_method(hdl_cfg(tiny_data, unet_ckpt))
    adapters = method.adapters
    assert len(adapters) == 5  # 4 skips + the fused map against the UNet's 5 encoder stages
    teacher_channels = [64, 64, 128, 256, 512]  # resnet18 stages at strides 2..32
    assert [a.out_channels for a in adapters] == teacher_channels
    trainer = Trainer(method.cfg, method, tmp_path, torch.device("cpu"))
    before = [a.weight.detach().clone() for a in adapters]
    batch = one_batch(method)
    losses = trainer.train_step(batch)
    assert {"ce", "cs", "dice", "loss"} <= set(losses) and losses["cs"] > 0
    assert all(a.weight.grad is not None and a.weight.grad.abs().sum() > 0 for a in adapters)
    trainer.train_step(batch)
    assert method.adapters is adapters
    assert all(not torch.equal(b, a.weight) for b, a in zip(before, adapters, strict=True))
    # the adapters are optimised with the student, and none of them is in the exported student
    opt_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in opt_params for p in adapters.parameters())
    assert not any(n.startswith("adapters") for n in method.student().state_dict())


def test_building_the_adapters_leaves_the_global_rng_where_the_student_alone_leaves_it(tiny_data, unet_ckpt):
    # every arm at one seed shares the student's init and, after it, the global RNG stream (dropout's draws)
    cfg = hdl_cfg(tiny_data, unet_ckpt)
    alone = TrainConfig(**{**vars(cfg), "method": "supervised", "method_args": {}})
    states = []
    for c in (alone, cfg, cfg):
        torch.manual_seed(0)
        method = build_method(c)
        states.append(torch.get_rng_state())
    assert torch.equal(states[0], states[1])
    assert torch.equal(states[1], states[2]) and torch.equal(  # the adapters' own init is fixed by the seed
        method.adapters[0].weight, build_method(cfg).adapters[0].weight
    )


def test_freeze_stage_trains_everything_but_the_student_encoder(tiny_data, unet_ckpt, tmp_path):
    torch.manual_seed(0)
    method = build_method(hdl_cfg(tiny_data, unet_ckpt, freeze_epochs=1.0))  # 6 images / batch 2: 3 iterations
    assert method.freeze_iters == 3
    trainer = Trainer(method.cfg, method, tmp_path, torch.device("cpu"))
    net = method.model.net

    def snapshot():
        return {n: p.detach().clone() for n, p in method.model.named_parameters()}

    batch = one_batch(method)
    before = snapshot()
    trainer.step = 0
    trainer.train_step(batch)
    after = snapshot()
    encoder = {f"net.encoder.{n}" for n, _ in net.encoder.named_parameters()}
    assert all(torch.equal(before[n], after[n]) for n in encoder)
    assert any(not torch.equal(before[n], after[n]) for n in after if n not in encoder)
    teacher_before = {n: p.clone() for n, p in method.teacher.state_dict().items()}
    trainer.step = 3  # the freeze stage is over
    trainer.train_step(batch)
    assert any(not torch.equal(after[n], p) for n, p in method.model.named_parameters() if n in encoder)
    assert all(torch.equal(teacher_before[n], p) for n, p in method.teacher.state_dict().items())


def test_fastlitessnet_exports_to_onnx(tmp_path):
    from distilkit.data.synth import SYNTH_INFO
    from distilkit.engine.checkpoint import model_meta
    from distilkit.engine.exporter import export_onnx, verify

    torch.manual_seed(0)
    model = create_model("fastlitessnet", SYNTH_INFO.num_classes, width=0.5).eval()
    path = tmp_path / "s.onnx"
    export_onnx(model, model_meta(model, SYNTH_INFO, (64, 128), "hdl"), path)
    report = verify(model, path, [torch.randn(1, 3, 64, 128), torch.randn(2, 3, 96, 160)])
    assert report["passed"]


def test_hdl_cli_end_to_end(tiny_data, unet_ckpt, tmp_path):
    args = ["distill", "hdl", "--data", "folder", "--data-root", str(tiny_data), "--teacher", str(unet_ckpt),
            "--width", "0.25", "--iters", "2", "--val-every", "2", "--batch", "2", "--imgsz", "64", "128",
            "--workers", "0", "--device", "cpu", "--freeze-epochs", "0.5", "--kd-weight", "0.5",
            "--schedule", "step", "--out", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    header = (tmp_path / "r/metrics.csv").read_text().splitlines()[0]
    assert all(k in header for k in ("cs", "dice", "kd", "ce"))
    from distilkit.engine.checkpoint import load_model

    student, meta = load_model(tmp_path / "r/weights/last.safetensors")
    assert meta["arch"]["name"] == "fastlitessnet" and meta["arch"]["width"] == 0.25
    no_teacher = CliRunner().invoke(app, ["distill", "hdl", "--data", "folder", "--data-root", str(tiny_data)])
    assert no_teacher.exit_code != 0 and "--teacher" in no_teacher.stderr


def test_hdl_on_a_voc_layout(tmp_path):
    """The write-up's data: Pascal VOC layout, 21 classes, UNet-VGG16 teacher, `--data voc`."""
    import numpy as np
    from PIL import Image

    from distilkit.data import build_dataset
    from distilkit.engine.checkpoint import model_meta, save_model

    voc = tmp_path / "VOCdevkit/VOC2007"
    for d in ("ImageSets/Segmentation", "JPEGImages", "SegmentationClass"):
        (voc / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, names in (("train", ["a1", "a2", "a3", "a4"]), ("val", ["b1", "b2"])):
        (voc / f"ImageSets/Segmentation/{split}.txt").write_text("\n".join(names) + "\n")
        for n in names:
            Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(voc / f"JPEGImages/{n}.jpg")
            label = rng.choice([0, 1, 15, 255], (64, 96)).astype(np.uint8)
            Image.fromarray(label, mode="L").save(voc / f"SegmentationClass/{n}.png")
    info = build_dataset("voc", "train", tmp_path).info
    torch.manual_seed(0)
    teacher = create_model("unet-vgg16", info.num_classes)
    ckpt = tmp_path / "t.safetensors"
    save_model(ckpt, teacher, model_meta(teacher, info, (64, 96), "supervised"))
    args = ["distill", "hdl", "--data", "voc", "--data-root", str(tmp_path), "--teacher", str(ckpt),
            "--width", "0.25", "--iters", "1", "--batch", "2", "--workers", "0", "--device", "cpu",
            "--out", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r/weights/last.safetensors").is_file()
