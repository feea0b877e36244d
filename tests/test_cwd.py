"""CWD's loss against an independent numpy computation (value and gradient), its tau^2 scaling, a teacher of
another resolution, MMRazor's reduction, and `distill cwd` end to end (also as SAKD's base)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from distilkit.cli import app
from distilkit.losses import cwd_loss
from distilkit.losses.cwd import channel_kl

TINY = ["--imgsz", "64", "128", "--batch", "2", "--workers", "0", "--device", "cpu"]


def numpy_cwd(s: np.ndarray, t: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """Loss and its gradient w.r.t. s, written out channel by channel in float64."""
    b, c = s.shape[:2]
    total, grad = 0.0, np.zeros_like(s)
    for i in range(b):
        for j in range(c):
            zs, zt = s[i, j].ravel() / tau, t[i, j].ravel() / tau
            p = np.exp(zt - zt.max()) / np.exp(zt - zt.max()).sum()
            q = np.exp(zs - zs.max()) / np.exp(zs - zs.max()).sum()
            total += tau**2 * np.sum(p * (np.log(p) - np.log(q)))
            grad[i, j] = (tau * (q - p)).reshape(s.shape[2:])  # d/ds of tau^2 KL: tau^2 (q - p) / tau
    return total / (b * c), grad / (b * c)


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_value_and_gradient_against_numpy(tau):
    g = torch.Generator().manual_seed(0)
    s = (3 * torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)).requires_grad_()
    t = 3 * torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    loss = cwd_loss(s.float(), t.float(), tau)
    loss.backward()
    expected, grad = numpy_cwd(s.detach().numpy(), t.numpy(), tau)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert np.allclose(s.grad.numpy(), grad, atol=1e-6)


def test_hand_worked_two_locations():
    """One channel, two locations: teacher (0, ln 3) -> p = (1/4, 3/4); student (0, 0) -> q = (1/2, 1/2).
    KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.130812."""
    t = torch.tensor([0.0, np.log(3.0)]).view(1, 1, 1, 2)
    s = torch.zeros(1, 1, 1, 2)
    assert cwd_loss(s, t, 1.0).item() == pytest.approx(0.25 * np.log(0.5) + 0.75 * np.log(1.5), rel=1e-6)
    assert cwd_loss(s, t, 1.0).item() == pytest.approx(0.130812, abs=1e-6)


def test_tau_squared_scaling_and_mmrazor_reduction():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(3, 4, 6, 6, generator=g), torch.randn(3, 4, 6, 6, generator=g)
    tau = 2.0
    raw = F.kl_div(F.log_softmax(s.flatten(2) / tau, -1), F.log_softmax(t.flatten(2) / tau, -1), log_target=True,
                   reduction="none").sum(-1)  # fmt: skip
    assert torch.allclose(channel_kl(s, t, tau), tau**2 * raw, atol=1e-6)
    # MMRazor's ChannelWiseDivergence: a sum over N, C and H*W of p (log p - log q), times tau^2, over N * C
    p = F.softmax(t.reshape(-1, 36) / tau, 1)
    mmrazor = (p * (F.log_softmax(t.reshape(-1, 36) / tau, 1) - F.log_softmax(s.reshape(-1, 36) / tau, 1))).sum()
    assert cwd_loss(s, t, tau).item() == pytest.approx((mmrazor * tau**2 / (3 * 4)).item(), rel=1e-5)
    assert torch.allclose(cwd_loss(s, t, tau, per_sample=True).mean(), cwd_loss(s, t, tau))
    assert cwd_loss(t, t, tau).abs().item() < 1e-6  # zero for a student equal to the teacher


def test_teacher_of_another_resolution_is_resized_to_the_student():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 3, 8, 10, generator=g), torch.randn(2, 3, 16, 20, generator=g)
    resized = F.interpolate(t, size=(8, 10), mode="bilinear", align_corners=False)
    assert cwd_loss(s, t).item() == pytest.approx(cwd_loss(s, resized).item(), rel=1e-6)


def test_distill_cwd_end_to_end_and_as_sakd_base(tiny_data, tiny_ckpt, tmp_path):
    runner = CliRunner()
    common = ["--teacher", str(tiny_ckpt), "--data", "folder", "--data-root", str(tiny_data), *TINY]
    out = tmp_path / "cwd"
    result = runner.invoke(app, ["distill", "cwd", *common, "--iters", "2", "--val-every", "2", "--warmup", "1",
                                 "--feature-weight", "1", "--tau", "2", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    args = json.loads((out / "args.json").read_text())
    assert args["method"] == "cwd" and args["method_args"]["tau"] == 2 and args["method_args"]["feature_weight"] == 1
    assert {"cwd", "cwd_feat"} <= set((out / "metrics.csv").read_text().splitlines()[0].split(","))
    sakd = tmp_path / "sakd"
    result = runner.invoke(app, ["distill", "sakd", *common, "--base", "cwd", "--epochs", "1", "--ratio", "0.5",
                                 "--out", str(sakd)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((sakd / "args.json").read_text())["method_args"]["base"] == "cwd"


def test_sakd_over_cwd_weights_per_image_cwd_terms(tiny_data, tiny_ckpt):
    """SAKD's base supplies per-image terms: with --base cwd they are CWD's, one per image."""
    from distilkit.engine.config import TrainConfig
    from distilkit.methods import build_method
    from distilkit.methods.cwd import CWD

    cfg = TrainConfig(method="sakd", data="folder", data_root=str(tiny_data), imgsz=(64, 128), batch=2, workers=0,
                      device="cpu", method_args={"teacher": str(tiny_ckpt), "base": "cwd", "epochs": 1})  # fmt: skip
    sakd = build_method(cfg)
    assert isinstance(sakd.base, CWD)
    images, labels = torch.randn(3, 3, 64, 128), torch.randint(0, 9, (3, 64, 128))
    sakd.student().eval()  # batch statistics would differ between the two forward passes
    terms = sakd.base.losses(images, labels, per_sample=True)
    assert set(terms) == {"ce", "cwd"} and terms["cwd"].shape == (3,)
    with torch.no_grad():
        t, s = sakd.base.teacher(images), sakd.student()(images)
    assert torch.allclose(terms["cwd"], 5.0 * cwd_loss(s, t, 1.0, per_sample=True), atol=1e-5)
