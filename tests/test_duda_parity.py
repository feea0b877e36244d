"""DUDA's self-training pieces against the official code's behaviour, computed independently of ours
(DAFormer: mmseg/models/uda/dacs.py, utils/dacs_transforms.py, datasets/uda_dataset.py, utils/utils.py;
MIC: masking_transforms.py; FDA: utils/__init__.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from distilkit.adapt import masked_image
from distilkit.adapt.selftrain import blur_kernel_size
from distilkit.data.camvid import CAMVID_INFO
from distilkit.data.cityscapes import CITYSCAPES_INFO
from distilkit.data.loader import TrainView
from distilkit.data.style import fda
from distilkit.data.transforms import AugmentConfig
from distilkit.engine.ema import ModelEMA, ema_decay_schedule
from distilkit.errors import DistilkitError
from distilkit.losses.fd import downscale_label_ratio, feature_distance, imagenet_copy, thing_classes


def test_ema_keeps_the_initial_weights_at_one_over_k_plus_one_as_daformer():
    """Updates after steps with model values 1, 2, 3 from an initial 0: DAFormer's running mean is 1.5."""
    model = nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(0.0)
    ema = ModelEMA(model, ema_decay_schedule(0.999))
    for step, value in enumerate((1.0, 2.0, 3.0)):  # the engine's after_step(step), step 0-based
        model.weight.data.fill_(value)
        ema.update(model, step + 1)  # as DUDA calls it: the model has taken step + 1 steps
    assert ema.ema.weight.item() == pytest.approx(np.mean([0.0, 1.0, 2.0, 3.0]))


def test_duda_updates_the_teacher_with_the_step_count(tiny_data, tmp_path):
    """DUDA's own after_step: the first update is a = 1/2, so the warm start keeps half its weight."""
    from distilkit.engine.config import TrainConfig
    from distilkit.methods import build_method

    args = {"tgt": "synth-city", "teacher_model": "fastlitessnet", "stage1_iters": 2, "stage3_iters": 2, "rcs": False}
    cfg = TrainConfig(command="t", method="duda", data="synth-gta", data_root=str(tiny_data), model="fastlitessnet",
                      iters=4, imgsz=(64, 64), batch=1, workers=0, device="cpu", method_args=args)  # fmt: skip
    duda = build_method(cfg)
    before = {k: v.clone() for k, v in duda.lt.state_dict().items() if v.dtype.is_floating_point}
    with torch.no_grad():
        for p in duda.ls.parameters():
            p.add_(1.0)
    duda.after_step(0)
    name = next(k for k, v in duda.ls.named_parameters())
    expected = 0.5 * before[name] + 0.5 * dict(duda.ls.named_parameters())[name]
    assert torch.allclose(duda.lt.state_dict()[name], expected, atol=1e-6)


def reference_mic_mask(keep_grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """MIC: the grid resized to H x W by mmseg's resize (torch nearest: source index floor(i * in / out))."""
    gh, gw = keep_grid.shape
    rows = np.floor(np.arange(h) * gh / h).astype(int)
    cols = np.floor(np.arange(w) * gw / w).astype(int)
    return keep_grid[rows][:, cols]


def test_mic_blocks_as_mic_on_a_camvid_sized_image():
    h, w, block, ratio = 352, 480, 64, 0.7
    g = torch.Generator().manual_seed(3)
    draws = torch.rand(1, 1, 6, 8, generator=torch.Generator().manual_seed(3))  # round(5.5), round(7.5)
    out = masked_image(torch.ones(1, 3, h, w), g, block, ratio)
    expected = reference_mic_mask((draws[0, 0] > ratio).float().numpy(), h, w)
    assert np.array_equal(out[0, 0].numpy(), expected)
    assert np.array_equal(out[0, 1].numpy(), expected)
    # 6 x 8 blocks of 58.7 x 60 pixels: row 59 already belongs to the second block row (ours cut 64-pixel blocks)
    assert np.array_equal(expected[59], reference_mic_mask((draws[0, 0] > ratio).float().numpy(), h, w)[60])


def test_blur_kernel_as_daformer():
    def reference(n: int) -> int:
        return int(np.floor(np.ceil(0.1 * n) - 0.5 + np.ceil(0.1 * n) % 2))

    for n in (64, 96, 160, 224, 352, 480, 512, 1024):
        assert blur_kernel_size(n) == reference(n)


def reference_fda_np(src: np.ndarray, trg: np.ndarray, beta: float) -> np.ndarray:
    """FDA's FDA_source_to_target_np with low_freq_mutate_np, re-typed from the official repository."""
    fft_src, fft_trg = np.fft.fft2(src, axes=(-2, -1)), np.fft.fft2(trg, axes=(-2, -1))
    amp_src, pha_src = np.abs(fft_src), np.angle(fft_src)
    amp_trg = np.abs(fft_trg)
    a_src, a_trg = np.fft.fftshift(amp_src, axes=(-2, -1)), np.fft.fftshift(amp_trg, axes=(-2, -1))
    _, h, w = a_src.shape
    b = int(np.floor(min(h, w) * beta))
    c_h, c_w = h // 2, w // 2
    a_src[:, c_h - b : c_h + b + 1, c_w - b : c_w + b + 1] = a_trg[:, c_h - b : c_h + b + 1, c_w - b : c_w + b + 1]
    a_src = np.fft.ifftshift(a_src, axes=(-2, -1))
    return np.real(np.fft.ifft2(a_src * np.exp(1j * pha_src), axes=(-2, -1)))


@pytest.mark.parametrize(("h", "w", "beta"), [(32, 48, 0.1), (33, 47, 0.1), (192, 256, 0.01), (64, 64, 0.0)])
def test_fda_equals_the_official_numpy_version(h, w, beta):
    g = torch.Generator().manual_seed(0)
    src, tgt = 0.3 + 0.4 * torch.rand(3, h, w, generator=g), 0.3 + 0.4 * torch.rand(3, h, w, generator=g)
    expected = np.clip(reference_fda_np(src.double().numpy(), tgt.double().numpy(), beta), 0, 1)
    assert np.allclose(fda(src, tgt, beta).numpy(), expected, atol=2e-5)


def test_fda_band_zero_is_the_mean_colour():
    src, tgt = 0.4 + 0.2 * torch.rand(3, 16, 16), 0.3 + 0.2 * torch.rand(3, 16, 16)  # nothing clipped
    out = fda(src, tgt, beta=0.0)
    assert torch.allclose(out.mean((1, 2)), tgt.mean((1, 2)), atol=1e-5)


def reference_downscale(gt: np.ndarray, s: int, min_ratio: float, n: int, ignore: int) -> np.ndarray:
    """DAFormer's downscale_label_ratio by loops: each patch's majority (ignore as class n) and its share."""
    b, h, w = gt.shape
    out = np.full((b, h // s, w // s), ignore)
    for i in range(b):
        for y in range(h // s):
            for x in range(w // s):
                patch = gt[i, y * s : (y + 1) * s, x * s : (x + 1) * s].ravel()
                patch = np.where(patch == ignore, n, patch)
                counts = np.bincount(patch, minlength=n + 1)
                c = int(counts.argmax())
                if counts[c] / patch.size >= min_ratio and c != n:
                    out[i, y, x] = c
    return out


def test_feature_distance_by_hand_on_thing_pixels():
    torch.manual_seed(0)
    gt = torch.randint(0, 4, (2, 8, 8))
    gt[0, :4, :4] = 2  # a pure patch of class 2 at the top left of image 0
    gt[1, 4:, 4:] = 255
    small = downscale_label_ratio(gt, 4, 0.75, 4, 255)
    assert np.array_equal(small.numpy(), reference_downscale(gt.numpy(), 4, 0.75, 4, 255))
    f, r = torch.randn(2, 5, 2, 2), torch.randn(2, 5, 2, 2)
    got = feature_distance(f, r, gt, [2, 3], 0.75, 4, 255)
    mask = np.isin(small.numpy(), [2, 3])
    dist = np.sqrt(((f.numpy() - r.numpy()) ** 2).sum(1))
    assert mask[0, 0, 0] and got.item() == pytest.approx(dist[mask].mean(), rel=1e-6)
    assert feature_distance(f, r, gt, None, 0.75, 4, 255).item() == pytest.approx(dist.mean(), rel=1e-6)
    none = torch.zeros_like(gt)  # no thing pixel: 0, not NaN
    assert feature_distance(f, r, none, [2], 0.75, 4, 255).item() == 0.0


def test_thing_classes_by_data_set():
    assert thing_classes(CITYSCAPES_INFO) == [6, 7, 11, 12, 13, 14, 15, 16, 17, 18]  # DAFormer's fdthings
    assert [CAMVID_INFO.class_names[c] for c in thing_classes(CAMVID_INFO)] == [
        "signsymbol", "car", "pedestrian", "bicyclist",
    ]  # fmt: skip
    assert thing_classes(CAMVID_INFO, ["car"]) == [8]
    with pytest.raises(DistilkitError, match="not among"):
        thing_classes(CAMVID_INFO, ["truck"])


def test_feature_distance_is_refused_without_an_imagenet_encoder():
    from distilkit.models import create_model

    with pytest.raises(DistilkitError, match="no ImageNet-initialised encoder"):
        imagenet_copy(create_model("unet-efficientnet-lite0", 3), "LS", None)
    pretrained = create_model("unet-efficientnet-lite0", 3, "imagenet")
    copy = imagenet_copy(pretrained, "LS", "imagenet")
    enc = dict(pretrained.net.encoder.named_parameters())
    assert all(torch.equal(p, enc[k]) for k, p in copy.net.encoder.named_parameters())
    assert not any(p.requires_grad for p in copy.parameters())


def test_rcs_crop_is_redrawn_until_it_holds_the_class(tiny_data):
    """DAFormer re-draws the crop of a rare-class sample up to 10 times until the class covers enough of it."""
    from distilkit.data import build_dataset

    ds = build_dataset("synth-gta", "train", tiny_data)
    image, label = ds.load(0)
    cls = next(c for c in np.unique(label) if c != 255 and (label == c).sum() < 0.05 * label.size)
    aug = AugmentConfig(scale=(1.0, 2.0))
    plain = TrainView(ds, (32, 32), aug, CITYSCAPES_INFO.mean, CITYSCAPES_INFO.std)
    redraw = TrainView(ds, (32, 32), aug, CITYSCAPES_INFO.mean, CITYSCAPES_INFO.std, class_pixels=20)
    hits_plain = hits_redraw = 0
    for seed in range(30):
        hits_plain += int((plain[(0, seed)][1] == cls).sum() > 20)
        hits_redraw += int((redraw[((0, int(cls)), seed)][1] == cls).sum() > 20)
    assert hits_redraw > hits_plain
    # the first draw is the plain one when it already holds the class: the same crop
    for seed in range(30):
        a, b = plain[(0, seed)], redraw[((0, int(cls)), seed)]
        if (a[1] == cls).sum() > 20:
            assert torch.equal(a[0], b[0])


def test_duda_with_the_reference_options_end_to_end(tiny_data, tmp_path):
    """FD on LS and SS, MIC with its target augmentation, DAFormer's CE averaging; FD refused without ImageNet."""
    from typer.testing import CliRunner

    from conftest import ok, one_error_line
    from distilkit.cli import app

    runner = CliRunner()
    args = ["distill", "duda", "--src", "synth-gta", "--tgt", "synth-city", "--data-root", str(tiny_data),
            "--teacher-model", "unet-efficientnet-lite0", "--student-model", "unet-efficientnet-lite0",
            "--pretrained", "imagenet", "--stage1-iters", "2", "--stage3-iters", "1", "--batch", "2",
            "--imgsz", "64", "64", "--inconsistency-images", "2", "--workers", "0", "--device", "cpu",
            "--mic", "--ce-average", "all", "--fd-weight", "0.005", "--fd-student"]  # fmt: skip
    ok(runner.invoke(app, [*args, "--out", str(tmp_path / "run")]))
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert "ls_fd" in metrics[0] and "ss_fd" in metrics[0] and "ls_mic" in metrics[0]
    random = [a if a != "imagenet" else "" for a in args]
    random = random[: random.index("--pretrained")] + random[random.index("--pretrained") + 2 :]
    one_error_line(runner.invoke(app, [*random, "--out", str(tmp_path / "bad")]), "no ImageNet-initialised encoder")
    assert not (tmp_path / "bad").exists()
    bad = runner.invoke(app, [*args, "--ce-average", "pixels", "--out", str(tmp_path / "bad")])
    one_error_line(bad, "--ce-average")


def test_adaptation_runs_do_not_choose_their_checkpoint_on_target_labels(tiny_data, tmp_path, monkeypatch):
    """A supervised run keeps its best val checkpoint; DUDA, whose val labels are the target's, keeps the final."""
    from distilkit.engine import trainer as engine
    from distilkit.engine.checkpoint import read_meta
    from distilkit.engine.config import TrainConfig

    scores = iter([0.5, 0.2, 0.5, 0.2])  # the first evaluation of each run is the better one
    real = engine.evaluate

    def scripted(*args, **kwargs):
        return {**real(*args, **kwargs), "miou": next(scores)}

    monkeypatch.setattr(engine, "evaluate", scripted)
    common = dict(data_root=str(tiny_data), imgsz=(64, 64), batch=1, workers=0, device="cpu", val_every=2,
                  val_limit=1)  # fmt: skip
    sup = TrainConfig(command="t", data="synth-gta", model="fastlitessnet", iters=4, **common)
    engine.run_training(sup, out=tmp_path / "sup")
    duda = TrainConfig(command="t", method="duda", data="synth-gta", model="fastlitessnet", iters=4, **common,
                       method_args={"tgt": "synth-city", "teacher_model": "fastlitessnet", "stage1_iters": 2,
                                    "stage3_iters": 2, "rcs": False, "inconsistency_images": 1})  # fmt: skip
    engine.run_training(duda, out=tmp_path / "duda")
    step = lambda run, name: read_meta(tmp_path / run / "weights" / name)["metrics"]["step"]  # noqa: E731
    assert step("sup", "best.safetensors") == 2 and step("sup", "last.safetensors") == 4
    assert step("duda", "best.safetensors") == 4 == step("duda", "last.safetensors")


def test_ce_average_all_counts_ignored_pixels_as_zeros_like_mmseg():
    """DAFormer's mmseg CE: the mean over every pixel, an ignored one adding 0; ours by default over valid ones."""
    from types import SimpleNamespace

    from distilkit.methods.duda import DUDA

    logits = torch.tensor([[[[2.0, 0.0, 1.0, 0.5]], [[0.0, 1.0, 3.0, 0.5]]]])  # 1 x 2 classes x 1 x 4 pixels
    labels = torch.tensor([[[0, 1, 255, 255]]])
    p = np.exp(logits[0, :, 0].numpy()) / np.exp(logits[0, :, 0].numpy()).sum(0)
    nll = [-np.log(p[0, 0]), -np.log(p[1, 1])]  # the two labelled pixels, by hand
    info = SimpleNamespace(ignore_index=255)
    for mode, count in (("all", 4), ("valid", 2)):
        fake = SimpleNamespace(args={"ce_average": mode}, _info=info)
        assert DUDA._ce(fake, logits, labels).item() == pytest.approx(sum(nll) / count, rel=1e-6)


def test_rcs_draws_a_class_only_from_images_with_more_than_min_pixels_of_it():
    """DAFormer keeps, for each class, the images with more than min_pixels (3000 on a 1914 x 1052 frame) of it;
    ours scales the count to the image's area: on 100 x 100 labels 3000 becomes 14.9 pixels."""
    from types import SimpleNamespace

    from distilkit.methods.duda import DUDA, RCS_REFERENCE_AREA

    labels = [np.zeros((100, 100), np.uint8) for _ in range(3)]
    labels[0][:1, :14] = 1  # 14 pixels of class 1: under 14.9, never drawn for it
    labels[1][:1, :15] = 1  # 15 pixels: over it
    labels[2][:10, :50] = 1  # 500 pixels
    assert 14 < 3000 * 100 * 100 / RCS_REFERENCE_AREA < 15
    fake = SimpleNamespace(
        src=type("Src", (), {"__len__": lambda self: 3, "load_or_skip": lambda self, i, label_only: labels[i]})(),
        _info=SimpleNamespace(num_classes=2),
        args={"rcs_min_pixels": 3000, "rcs_temperature": 0.01},
    )
    order = DUDA._rcs_order(fake, seed=0)
    drawn = [pair for epoch in range(50) for pair in order(epoch)]
    assert {i for i, c in drawn if c == 1} == {1, 2}
    assert {i for i, c in drawn if c == 0} <= {0, 1, 2} and any(c == 1 for _, c in drawn)
