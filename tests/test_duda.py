"""DUDA: its pieces against hand-worked numbers, which parameters each stage moves, and the CLI end to end."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from distilkit.adapt import class_inconsistency, class_mix, masked_image, pseudo_labels, rcs_probabilities
from distilkit.cli import app
from distilkit.data.style import fda
from distilkit.engine.checkpoint import model_meta, save_model
from distilkit.engine.config import TrainConfig
from distilkit.engine.metrics import confusion_matrix
from distilkit.engine.trainer import Trainer
from distilkit.losses import pixel_kd, pixel_kd_map
from distilkit.methods import build_method


def test_inconsistency_weights_by_hand():
    lt = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 2]])
    ss = torch.tensor([[0, 1, 1, 1], [2, 2, 2, 0]])
    inc, w = class_inconsistency(confusion_matrix(ss, lt, 4, ignore_index=-1))
    # IoU: class 0 = 1/3, class 1 = 2/3, class 2 = 3/4, class 3 absent from both -> I = 0
    assert inc.tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 4, 0.0])
    # I' = C * I / sum(I) = 4 * I / 1.25, clipped to [0, 2]
    assert w.tolist() == pytest.approx([2.0, 4 / 3 / 1.25, 1 / 1.25, 0.0])


def test_class_mix_composes_labels():
    g = torch.Generator().manual_seed(0)
    src_lbl = torch.tensor([[[0, 1], [2, 255]]])
    pseudo = torch.tensor([[[5, 5], [5, 5]]])
    src_img, tgt_img = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    mixed, label, mask = class_mix(src_img, src_lbl, tgt_img, pseudo, g)
    pasted = set(src_lbl[mask].tolist())
    assert len(pasted) == 2 and pasted <= {0, 1, 2}  # half of the 3 present classes, rounded up
    assert not mask[0, 1, 1]  # the ignore pixel is never pasted
    assert torch.equal(label, torch.where(mask, src_lbl, pseudo))
    assert torch.equal(mixed, mask[:, None].float().expand(-1, 3, -1, -1))  # source pixels exactly where pasted


def test_rcs_probabilities_by_hand():
    p = rcs_probabilities([0.5, 0.3, 0.2], temperature=0.01)
    z = [math.exp((1 - f) / 0.01 - 80) for f in (0.5, 0.3, 0.2)]
    assert p.tolist() == pytest.approx([v / sum(z) for v in z])
    assert p.argmax() == 2 and p.sum() == pytest.approx(1.0)


def test_pseudo_labels_confidence_weight():
    logits = torch.tensor([[[[10.0, 0.0]], [[0.0, 0.1]]]])  # pixel 0 confident class 0, pixel 1 unsure
    label, q = pseudo_labels(logits, 0.968)
    assert label.tolist() == [[[0, 1]]] and q.item() == 0.5


def test_class_balanced_pseudo_labels_keep_each_classs_most_confident_fraction():
    # six pixels: class 0 predicted at 0.9, 0.6, 0.8, 0.55; class 1 at 0.7, 0.99 (probability of the argmax)
    p0 = torch.tensor([0.9, 0.6, 0.8, 0.55, 0.3, 0.01])
    logits = torch.stack([p0.log(), (1 - p0).log()]).view(1, 2, 2, 3)
    label, q = pseudo_labels(logits, 0.968, keep=0.5, ignore_index=255)
    # class 0 keeps its top 2 of 4 (0.9, 0.8), class 1 its top ceil(0.5 * 2) = 1 (0.99); q still counts all
    assert label.view(-1).tolist() == [0, 255, 0, 255, 255, 1]
    assert q.item() == pytest.approx(1 / 6)
    assert pseudo_labels(logits, 0.968, keep=1.0)[0].view(-1).tolist() == [0, 0, 0, 0, 1, 1]


def test_masking_drops_blocks():
    x = torch.ones(2, 3, 128, 128)
    m = masked_image(x, torch.Generator().manual_seed(0), block=64, ratio=0.7)
    blocks = m[:, 0, ::64, ::64]
    assert set(m.unique().tolist()) <= {0.0, 1.0} and blocks.numel() == 8
    assert torch.equal(m[:, :, :64, :64], blocks[:, None, :1, :1].expand(2, 3, 64, 64))


def test_fda_keeps_the_phase_and_takes_the_low_amplitude():
    g = torch.Generator().manual_seed(0)
    src, tgt = 0.3 + 0.4 * torch.rand(3, 32, 48, generator=g), 0.3 + 0.4 * torch.rand(3, 32, 48, generator=g)
    out = fda(src, tgt, beta=0.1)  # b = 3
    fs, fo, ft = torch.fft.fft2(src), torch.fft.fft2(out), torch.fft.fft2(tgt)
    strong = fs.abs() > 1e-3
    dphase = torch.remainder(fo.angle() - fs.angle() + math.pi, 2 * math.pi) - math.pi
    assert dphase[strong].abs().max() < 1e-3
    assert torch.allclose(fo.abs()[..., :3, :3], ft.abs()[..., :3, :3], rtol=1e-3, atol=1e-3)
    assert torch.allclose(fo.abs()[..., 10:20, 10:20], fs.abs()[..., 10:20, 10:20], rtol=1e-3, atol=1e-3)


def test_pixel_kd_by_hand():
    s, t = torch.tensor([[[[0.0]], [[0.0]]]]), torch.tensor([[[[math.log(3.0)]], [[0.0]]]])
    # teacher p = (3/4, 1/4), student q = (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2); T = 1
    assert pixel_kd(s, t, 1.0).item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    # gradient: d(T^2 KL)/ds = T (q - p), with p and q at temperature T; the teacher gets none
    for temp in (1.0, 2.0):
        s, t = s.detach().clone().requires_grad_(), t.detach().clone().requires_grad_()
        pixel_kd(s, t, temp).backward()
        p = torch.softmax(torch.tensor([math.log(3.0), 0.0]) / temp, 0)
        expected = temp * (torch.tensor([0.5, 0.5]) - p)
        assert torch.allclose(s.grad.flatten(), expected, atol=1e-6) and t.grad is None


def test_pixel_kd_map_gradient_equals_autograd_through_the_formula():
    """The written-out backward of pixel_kd_map against autograd on KL written with log_softmax, any weights."""
    torch.manual_seed(0)
    for temp in (1.0, 4.0):
        s, t = torch.randn(2, 5, 6, 7, requires_grad=True), torch.randn(2, 5, 6, 7)
        weights = torch.randn(2, 6, 7)
        p = torch.softmax(t / temp, 1)
        ref = (p * (torch.log_softmax(t / temp, 1) - torch.log_softmax(s / temp, 1))).sum(1) * temp**2
        ours = pixel_kd_map(s, t, temp)
        assert torch.allclose(ours, ref, atol=1e-5)
        (g_ours,) = torch.autograd.grad((ours * weights).sum(), s)
        (g_ref,) = torch.autograd.grad((ref * weights).sum(), s)
        assert torch.allclose(g_ours, g_ref, atol=1e-5)


def duda_cfg(root, **kw) -> TrainConfig:
    args = dict(tgt="folder", teacher_model="segformer-b0", stage1_iters=1, stage3_iters=1, inconsistency_images=2)
    base = dict(command="distill-duda", method="duda", data="folder", data_root=str(root), model="segformer-b0",
                imgsz=(64, 128), batch=2, iters=2, val_every=1, warmup=0, workers=0, device="cpu", lr=1e-3,
                method_args=args)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_each_stage_moves_only_what_it_should(tiny_data, tmp_path):
    torch.manual_seed(0)
    method = build_method(duda_cfg(tiny_data))
    trainer = Trainer(duda_cfg(tiny_data), method, tmp_path, torch.device("cpu"))
    view = method.train_views()
    batch = {k: tuple(torch.stack([v[(i, i)][j] for i in range(2)]) if j < 2 else torch.tensor([0, 1])
                      for j in range(3)) for k, v in view.items()}  # fmt: skip
    snap = lambda net: {k: v.clone() for k, v in net.state_dict().items()}  # noqa: E731
    lt0, ls0, ss0 = snap(method.lt), snap(method.ls), snap(method.ss)

    trainer.train_step(batch)  # stage 1 (step 0); after_step: EMA, then stage 2 (n1 = 1)
    assert all(p.grad is None for p in method.lt.parameters())  # LT never gets gradients
    changed = lambda a, b: any(not torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert changed(snap(method.ls), ls0) and changed(snap(method.ss), ss0)
    a = 0.5  # the first update follows LS's first step: min(1 - 1/2, 0.999), as DAFormer's at local_iter 1
    ls1, lt1 = snap(method.ls), snap(method.lt)
    floats = [k for k in lt1 if lt1[k].dtype.is_floating_point]
    assert all(torch.allclose(lt1[k], a * lt0[k] + (1 - a) * ls1[k]) for k in floats)
    assert all(torch.equal(lt1[k], ls1[k]) for k in lt1 if k not in floats)  # integer buffers copied
    assert len(method.stages) == 4 and method.weights.shape == (19,)

    trainer.step = 1
    ss1 = snap(method.ss)
    trainer.train_step(batch)  # stage 3: only SS trains
    assert not changed(snap(method.ls), ls1) and not changed(snap(method.lt), lt1)
    assert changed(snap(method.ss), ss1)
    assert all(p.grad is None for p in method.ls.parameters())


def test_teacher_and_student_checkpoints_warm_start_the_networks(tiny_data, tmp_path):
    """--teacher starts LS and LT, --student starts SS, from source-trained checkpoints (weights equal)."""
    torch.manual_seed(0)
    first = build_method(duda_cfg(tiny_data))
    info = first.info()
    for role, net in (("teacher", first.ls), ("student", first.ss)):
        save_model(tmp_path / f"{role}.safetensors", net, model_meta(net, info, (64, 128), "supervised"))
    torch.manual_seed(1)  # a different seed: only the checkpoints can make the networks equal
    args = {"teacher": str(tmp_path / "teacher.safetensors"), "student": str(tmp_path / "student.safetensors")}
    cfg = duda_cfg(tiny_data)
    warm = build_method(replace(cfg, method_args={**cfg.method_args, **args}))
    same = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)  # noqa: E731
    assert same(warm.ls.state_dict(), first.ls.state_dict()) and same(warm.lt.state_dict(), first.ls.state_dict())
    assert same(warm.ss.state_dict(), first.ss.state_dict())
    assert not same(build_method(duda_cfg(tiny_data)).ss.state_dict(), first.ss.state_dict())


def test_duda_cli_end_to_end(tiny_data, tmp_path):
    runner = CliRunner()
    args = ["distill", "duda", "--src", "folder", "--tgt", "folder", "--data-root", str(tiny_data),
            "--teacher-model", "segformer-b0", "--stage1-iters", "2", "--stage3-iters", "2", "--batch", "2",
            "--imgsz", "64", "128", "--inconsistency-images", "3", "--workers", "0", "--device", "cpu",
            "--style", "fda", "--mic", "--strong-aug", "--pseudo-keep", "0.5",
            "--out", str(tmp_path / "run")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "target mIoU by stage" in result.stdout and "class inconsistency" in result.stdout
    stages = json.loads((tmp_path / "run/stages.json").read_text())
    assert [s["network"] for s in stages["stages"]][-1].startswith("small student")
    for name in ("best.safetensors", "teacher.safetensors", "last.state.pt"):
        assert (tmp_path / "run/weights" / name).is_file()
    assert (tmp_path / "run/inconsistency.csv").is_file()
    bad = runner.invoke(app, ["distill", "duda", "--src", "synth-gta", "--tgt", "camvid", "--data-root", str(tmp_path)])
    assert bad.exit_code == 1 and "camvid" in bad.stderr and "Traceback" not in bad.output
    bad = runner.invoke(app, [*args[:-2], "--pseudo-keep", "0", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "--pseudo-keep" in bad.stderr and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()


def test_source_crops_take_the_colour_augmentation_and_target_crops_none(tiny_data):
    aug = {"jitter": 0.4, "hue": 0.5, "grey": 1.0}
    cfg = duda_cfg(tiny_data)
    cfg.method_args = {**cfg.method_args, "aug": aug}
    views = build_method(cfg).train_views()
    assert (views["src"].aug.jitter, views["src"].aug.hue, views["src"].aug.grey) == (0.4, 0.5, 1.0)
    assert (views["tgt"].aug.jitter, views["tgt"].aug.hue, views["tgt"].aug.grey) == (0.0, 0.0, 0.0)
    view = views["src"]
    src, _, _ = view[(0, 7)]
    raw = src * torch.tensor(view.std).view(3, 1, 1) + torch.tensor(view.mean).view(3, 1, 1)
    assert torch.allclose(raw[0], raw[1], atol=1e-5) and torch.allclose(raw[1], raw[2], atol=1e-5)  # grey = 1.0


def test_stage3_keeps_target_images_in_the_students_batchnorm_statistics(tiny_data):
    """Stage 3's loss uses SS on source and mixed crops only, but the plain target crops pass through SS as in
    stage 1: a BatchNorm student's running statistics must keep seeing what it is deployed on (without them
    the demo's SS lost 6.6 target mIoU in 40 steps; docs/methods.md)."""
    from distilkit.engine.config import TrainConfig
    from distilkit.methods import build_method

    args = {"tgt": "synth-city", "teacher_model": "fastlitessnet", "stage1_iters": 1, "stage3_iters": 1, "rcs": False,
            "inconsistency_images": 2}  # fmt: skip
    cfg = TrainConfig(command="t", method="duda", data="synth-gta", data_root=str(tiny_data), model="fastlitessnet",
                      iters=2, imgsz=(64, 64), batch=2, workers=0, device="cpu", method_args=args)  # fmt: skip
    duda = build_method(cfg)
    duda.weights = torch.ones(duda.info().num_classes)
    g = torch.Generator().manual_seed(0)
    x_src, x_tgt = torch.randn(2, 3, 64, 64, generator=g), 3 + torch.randn(2, 3, 64, 64, generator=g)
    y_src = torch.randint(0, 2, (2, 64, 64), generator=g)
    bn = next(m for m in duda.ss.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    bn.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
    losses = duda.stage3(x_src, y_src, x_tgt)
    assert seen == [6]  # source, mixed and plain target crops in one batch
    assert torch.isfinite(losses["loss"])


def test_target_kd_control_is_source_ce_plus_kd_from_the_frozen_large_model_on_target_crops(tiny_data, tmp_path):
    # DUDA's control without adaptation: the loss recomputed by hand from the networks' outputs, and only SS moves
    torch.manual_seed(0)
    large = build_method(duda_cfg(tiny_data)).ls  # stands in for a source-trained large model
    info = build_method(duda_cfg(tiny_data)).info()
    save_model(tmp_path / "large.safetensors", large, model_meta(large, info, (64, 128), "supervised"))
    cfg = duda_cfg(tiny_data, method="target-kd")
    args = {"temperature": 2.0, "kd_weight": 0.5, "teacher": str(tmp_path / "large.safetensors")}
    cfg = replace(cfg, method_args={**cfg.method_args, **args})
    method = build_method(cfg)
    assert all(torch.equal(v, large.state_dict()[k]) for k, v in method.lt.state_dict().items())
    trainer = Trainer(cfg, method, tmp_path, torch.device("cpu"))
    assert set(method.networks()) == {"lt", "ss"} and not method.extra_checkpoints()
    opt_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in method.ss.parameters()}
    view = method.train_views()
    batch = {k: tuple(torch.stack([v[(i, i)][j] for i in range(2)]) if j < 2 else torch.tensor([0, 1])
                      for j in range(3)) for k, v in view.items()}  # fmt: skip
    (x_src, y_src, _), (x_tgt, _, _) = batch["src"], batch["tgt"]
    ss0 = {k: v.clone() for k, v in method.ss.state_dict().items()}
    lt0 = {k: v.clone() for k, v in method.lt.state_dict().items()}
    with torch.no_grad():
        torch.manual_seed(1)
        out = method.ss.train()(torch.cat([x_src, x_tgt]))
        soft = method.lt.eval()(x_tgt)
        valid = y_src != method.info().ignore_index
        ce = -out[:2].log_softmax(1).gather(1, y_src.clamp(min=0)[:, None])[:, 0][valid].mean()
        p_t = (soft / 2).softmax(1)
        kl = (p_t * (p_t.log() - (out[2:] / 2).log_softmax(1))).sum(1).mean() * 4  # T^2 KL, mean over pixels
    method.ss.load_state_dict(ss0)  # the forward above moved the BatchNorm statistics
    torch.manual_seed(1)
    losses = trainer.train_step(batch)
    assert losses["ss_src"] == pytest.approx(ce.item(), rel=1e-4)
    assert losses["ss_kd"] == pytest.approx(0.5 * kl.item(), rel=1e-4)
    assert losses["loss"] == pytest.approx(ce.item() + 0.5 * kl.item(), rel=1e-4)
    assert all(torch.equal(v, lt0[k]) for k, v in method.lt.state_dict().items())  # LT frozen, no EMA
    assert any(not torch.equal(v, ss0[k]) for k, v in method.ss.state_dict().items())
    trainer.step = 1
    trainer.train_step(batch)  # the step DUDA ends pre-adaptation on: nothing measured, nothing updated
    assert method.stages == [] and all(torch.equal(v, lt0[k]) for k, v in method.lt.state_dict().items())


def test_duda_no_adapt_runs_target_kd_from_the_cli_and_needs_a_teacher(tiny_data, tmp_path):
    large = build_method(duda_cfg(tiny_data)).ls
    save_model(tmp_path / "large.safetensors", large, model_meta(large, build_method(duda_cfg(tiny_data)).info(),
                                                                   (64, 128), "supervised"))  # fmt: skip
    args = ["distill", "duda", "--src", "folder", "--tgt", "folder", "--data-root", str(tiny_data), "--no-adapt",
            "--stage1-iters", "1", "--stage3-iters", "1", "--batch", "2", "--imgsz", "64", "128", "--workers", "0",
            "--device", "cpu"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--teacher", str(tmp_path / "large.safetensors"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "Target KD (--no-adapt)" in result.stdout and "class inconsistency" not in result.stdout
    assert json.loads((tmp_path / "r/args.json").read_text())["method"] == "target-kd"
    assert (tmp_path / "r/weights/best.safetensors").is_file()
    assert not (tmp_path / "r/weights/teacher.safetensors").exists()
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "needs --teacher" in bad.stderr and "Traceback" not in bad.output
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
    teacher = ["--teacher", str(tmp_path / "large.safetensors")]
    bad = runner.invoke(app, [*args, *teacher, "--mic", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "--mic" in bad.stderr and "Traceback" not in bad.output
