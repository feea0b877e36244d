"""Checkpoints, EMA, schedules, run directories, and resume = uninterrupted."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from distilkit.data import build_dataset
from distilkit.engine.checkpoint import load_model, load_state, model_meta, read_meta, save_model
from distilkit.engine.config import TrainConfig
from distilkit.engine.ema import ModelEMA, ema_decay_schedule
from distilkit.engine.optim import build_optimizer, lr_factor
from distilkit.engine.trainer import Trainer, run_training
from distilkit.errors import DistilkitError
from distilkit.models import create_model
from distilkit.utils.files import increment_run_dir


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return create_model("segformer-b0", num_classes=19).eval()


def test_checkpoint_round_trip(tiny_model, tmp_path):
    info = build_dataset("synth-gta", "val").info
    meta = model_meta(tiny_model, info, (64, 128), "supervised", {"miou": 0.5})
    save_model(tmp_path / "m.safetensors", tiny_model, meta)
    model, loaded = load_model(tmp_path / "m.safetensors")
    x = torch.randn(1, 3, 64, 128)
    assert torch.equal(model(x), tiny_model(x))
    for key in ("arch", "class_names", "palette", "ignore_index", "imgsz", "mean", "std", "dataset", "method"):
        assert key in loaded
    assert loaded["arch"]["name"] == "segformer-b0" and loaded["metrics"]["miou"] == 0.5
    assert read_meta(tmp_path / "m.safetensors")["class_names"][13] == "car"


def test_segformer_logits_are_contiguous_and_equal_smps_upsampled_head(tiny_model):
    """The head's x4 upsampling moved out of smp's head into SegModel.forward, on a contiguous map: the same
    numbers as smp's nn.Upsample on the channels-last map, in the layout the per-pixel losses read fast."""
    x = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        logits, raw = tiny_model(x), tiny_model.net(x)
    assert raw.shape[-2:] == (16, 32) and not raw.is_contiguous()  # stride 4, channels-last from the decoder
    assert logits.is_contiguous() and logits.shape == (2, 19, 64, 128)
    torch.testing.assert_close(logits, torch.nn.Upsample(scale_factor=4, mode="bilinear")(raw))


def test_bad_checkpoints_are_refused(tiny_model, tmp_path):
    good = tmp_path / "m.safetensors"
    save_model(good, tiny_model, model_meta(tiny_model, build_dataset("synth-gta", "val").info, (64, 128), "x"))
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(DistilkitError, match="cannot read checkpoint"):
        load_model(truncated)
    other = tmp_path / "other.safetensors"
    meta = json.loads(__import__("safetensors").safe_open(str(good), "pt").metadata()["distilkit-model"])
    meta["arch"]["name"] = "unet-resnet18"
    save_model(other, tiny_model, meta)
    with pytest.raises(DistilkitError, match="does not fit architecture 'unet-resnet18'"):
        load_model(other)
    with pytest.raises(DistilkitError, match="not found"):
        load_model(tmp_path / "missing.safetensors")


class Boom:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_training_state_never_unpickles_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"x": Boom()}, tmp_path / "evil.pt", pickle_module=pickle)
    with pytest.raises(DistilkitError, match="cannot resume"):
        load_state(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


def test_ema_updates_floats_and_copies_integers():
    model = torch.nn.BatchNorm1d(2)
    ema = ModelEMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.num_batches_tracked.fill_(7)
    ema.update(model, step=5)
    assert torch.allclose(ema.ema.weight, torch.full((2,), 0.9 * 1.0 + 0.1 * 2.0))
    assert ema.ema.num_batches_tracked.item() == 7
    schedule = ema_decay_schedule(0.999)
    assert schedule(0) == 0.0 and schedule(1) == 0.5 and schedule(9) == pytest.approx(0.9)
    assert schedule(100_000) == 0.999


def test_lr_schedules():
    assert lr_factor(0, 100, 10, "poly") == pytest.approx(1e-6)
    assert lr_factor(5, 100, 10, "poly") == pytest.approx(0.5, abs=1e-5)
    assert lr_factor(10, 100, 10, "poly") == 1.0
    assert lr_factor(55, 100, 10, "poly", power=1.0) == pytest.approx(0.5)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0)
    with pytest.raises(DistilkitError):
        lr_factor(50, 100, 10, "linear-ish")


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_fused_optimisers_make_the_reference_update(name):
    """The fused kernel the engine picks takes the same steps as PyTorch's per-tensor reference loop."""
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GELU(), torch.nn.Conv2d(4, 2, 1))
    b, start = pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(a))
    fused = build_optimizer([{"params": list(a.parameters())}], name, 1e-2, 0.05)
    ref = getattr(torch.optim, {"adamw": "AdamW", "adam": "Adam"}[name])(b.parameters(), lr=1e-2, weight_decay=0.05,
                                                                         foreach=False)  # fmt: skip
    assert fused.defaults["fused"]
    for _ in range(3):
        x = torch.randn(2, 3, 8, 8)
        for net, opt in ((a, fused), (b, ref)):
            opt.zero_grad()
            (net(x) - 1).square().mean().backward()
            opt.step()
    for pa, pb, p0 in zip(a.parameters(), b.parameters(), start.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
        assert (pa - p0).abs().mean() > 1e-2  # every parameter tensor moved (3 steps of lr 1e-2)


def test_run_dirs_increment_and_never_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert increment_run_dir("train-teacher").as_posix() == "runs/train-teacher/exp"
    assert increment_run_dir("train-teacher").as_posix() == "runs/train-teacher/exp2"
    assert increment_run_dir("train-teacher", exist_ok=True).as_posix() == "runs/train-teacher/exp"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("precious")
    with pytest.raises(DistilkitError, match="already holds files"):
        increment_run_dir("train-teacher", out=tmp_path / "mine")
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious"


def tiny_cfg(data_root, **kw) -> TrainConfig:
    base = dict(
        data="folder", data_root=str(data_root), model="segformer-b0", imgsz=(64, 128), batch=2, iters=6,
        val_every=3, warmup=2, workers=0, device="cpu", lr=1e-3,
    )  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_resume_equals_uninterrupted(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, full_dir, _ = run_training(tiny_cfg(tiny_data), out=tmp_path / "full")

    original = Trainer.train_step

    def dies_at_step_4(self, batch):
        if self.step == 4:
            raise KeyboardInterrupt  # after the state saved at step 3
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_cfg(tiny_data), out=tmp_path / "cut")
    monkeypatch.setattr(Trainer, "train_step", original)
    assert load_state(tmp_path / "cut/weights/last.state.pt")["step"] == 3
    run_training(None, resume=tmp_path / "cut")

    from safetensors.torch import load_file

    a, b = load_file(full_dir / "weights/last.safetensors"), load_file(tmp_path / "cut/weights/last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise, on CPU


def test_evaluation_does_not_move_the_global_rng(tiny_model):
    from distilkit.engine.validator import evaluate

    ds = build_dataset("synth-gta", "val")
    torch.manual_seed(3)
    before = torch.get_rng_state()
    evaluate(tiny_model, ds, ds.info, (64, 128), torch.device("cpu"), 2, 0, show_progress=False, limit=2)
    assert torch.equal(torch.get_rng_state(), before)  # so --val-every cannot change a run's result


def test_pretrained_local_file_and_offline_fallback(tmp_path, monkeypatch, capsys):
    import socket

    import segmentation_models_pytorch as smp
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = create_model("unet-resnet18", num_classes=3)
    save_file({f"encoder.{k}": v.contiguous() for k, v in source.net.encoder.state_dict().items()},
              str(tmp_path / "enc.safetensors"))  # fmt: skip
    torch.manual_seed(2)
    loaded = create_model("unet-resnet18", num_classes=3, pretrained=str(tmp_path / "enc.safetensors"))
    a, b = source.net.encoder.state_dict(), loaded.net.encoder.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(DistilkitError, match="no such file"):
        create_model("unet-resnet18", num_classes=3, pretrained=str(tmp_path / "missing.pth"))

    real = smp.create_model
    downloads = []

    def offline(*args, encoder_weights=None, **kwargs):
        if encoder_weights is not None:
            downloads.append(encoder_weights)
            raise OSError("Temporary failure in name resolution")
        return real(*args, encoder_weights=None, **kwargs)

    monkeypatch.setattr(smp, "create_model", offline)
    # a name that resolves but a download that fails: smp is asked, its failure is one line
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [("resolved",)])
    model = create_model("unet-resnet18", num_classes=3, pretrained="imagenet")
    err = capsys.readouterr().err
    assert downloads == ["imagenet"]
    assert "could not download ImageNet weights" in err and "random init" in err and "Traceback" not in err
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64) and model.encoder_init is None

    # no name resolution at all (this machine): one line at once, the hub client (and its retries) never runs
    def unresolved(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolved)
    create_model("unet-resnet18", num_classes=3, pretrained="imagenet")
    err = capsys.readouterr().err
    assert downloads == ["imagenet"] and err.count("\n") == 1 and "no network" in err and "random init" in err


def test_amp_and_grad_clip_train_on_cpu(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results, run_dir, _ = run_training(tiny_cfg(tiny_data, iters=2, val_every=2, amp=True, grad_clip=1.0))
    assert 0 <= results["miou"] <= 1 and (run_dir / "weights/best.safetensors").is_file()


@pytest.mark.parametrize("method", ["kd", "sdd", "hdl", "sakd", "cwd"])
def test_distill_resume_equals_uninterrupted(method, tiny_data, tiny_ckpt, tmp_path, monkeypatch):
    """A distillation run cut after its step-3 save and resumed ends with the same student, bitwise on CPU
    (HDL's adapters and SAKD's selections, alphas and counts travel in the training state)."""
    monkeypatch.chdir(tmp_path)
    args = {"teacher": str(tiny_ckpt)}
    if method == "sakd":  # SAKD's own arguments: other methods refuse them (distilkit/schema.py)
        args |= {"epochs": 4, "ratio": 0.5}
    if method == "cwd":  # with the feature term: its adapter travels in the training state too
        args["feature_weight"] = 1.0

    def cfg():
        return tiny_cfg(tiny_data, method=method, model="fastlitessnet", model_args={"width": 0.25},
                        method_args=dict(args))  # fmt: skip

    _, full_dir, _ = run_training(cfg(), out=tmp_path / "full")
    original = Trainer.train_step

    def dies_at_step_4(self, batch):
        if self.step == 4:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg(), out=tmp_path / "cut")
    monkeypatch.setattr(Trainer, "train_step", original)
    run_training(None, resume=tmp_path / "cut")

    from safetensors.torch import load_file

    a, b = load_file(full_dir / "weights/last.safetensors"), load_file(tmp_path / "cut/weights/last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_weights_fine_tune_a_checkpoint_and_refuse_another_label_space(tiny_data, tmp_path):
    """train-teacher --weights: training starts from the checkpoint's model (its architecture, not --model)."""
    from dataclasses import replace

    from distilkit.methods import build_method

    info = build_dataset("folder", "train", tiny_data).info
    source = build_method(tiny_cfg(tiny_data, model="segformer-b1")).model
    ckpt = tmp_path / "source.safetensors"
    save_model(ckpt, source, model_meta(source, info, (64, 128), "supervised"))
    method = build_method(tiny_cfg(tiny_data, model="segformer-b0", method_args={"weights": str(ckpt)}))
    assert method.model.arch["name"] == "segformer-b1"
    own, ref = method.model.state_dict(), source.state_dict()
    assert own.keys() == ref.keys() and all(torch.equal(own[k], ref[k]) for k in own)
    five = create_model("segformer-b0", 5)
    other = tmp_path / "five.safetensors"
    five_info = replace(info, class_names=info.class_names[:5], palette=info.palette[:5], eval_classes=None)
    save_model(other, five, model_meta(five, five_info, (64, 128), "supervised"))
    with pytest.raises(DistilkitError, match="predicts 5 classes"):
        build_method(tiny_cfg(tiny_data, method_args={"weights": str(other)}))


def test_live_logging_writes_tensorboard_events_or_says_it_is_off(tiny_data, tmp_path, monkeypatch):
    """Losses, lr, mIoU, per-class IoU and overlays, read back with tensorboard's own reader."""
    import sys

    import distilkit.engine.live as live
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.trainer import run_training

    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = TrainConfig(command="t", data="folder", data_root=str(tiny_data), model="fastlitessnet", iters=2,
                      imgsz=(64, 128), batch=2, workers=0, device="cpu", val_every=2, log_every=1)  # fmt: skip
    run_training(cfg, out=tmp_path / "r")
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "val/miou"} <= set(tags["scalars"])
    assert any(t.startswith("val_iou/") for t in tags["scalars"]) and "val/prediction_0" in tags["images"]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    monkeypatch.setattr(live, "_said", False)
    printed = []
    monkeypatch.setattr(live.console, "print", lambda *a, **k: printed.append(" ".join(map(str, a))))
    run_training(cfg, out=tmp_path / "s")
    assert not (tmp_path / "s" / "tensorboard").exists()
    assert sum("live logging off" in p for p in printed) == 1
