"""SDD against independent computations, and the sdd command end to end."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from distilkit.cli import app
from distilkit.losses import pixel_kd
from distilkit.losses.sdd import region_logits, region_pyramid, region_targets, sdd_loss


def kl(t: torch.Tensor, s: torch.Tensor, temperature: float = 1.0) -> float:
    """KL(softmax(t/T) || softmax(s/T)) * T^2 for one row, written out."""
    pt = [math.exp(v / temperature) for v in t.tolist()]
    ps = [math.exp(v / temperature) for v in s.tolist()]
    pt, ps = [v / sum(pt) for v in pt], [v / sum(ps) for v in ps]
    return sum(a * math.log(a / b) for a, b in zip(pt, ps, strict=True)) * temperature**2


def test_single_scale_equals_kd_on_image_pooled_logits():
    torch.manual_seed(0)
    s, t = torch.randn(3, 5, 8, 8), torch.randn(3, 5, 8, 8)
    labels = torch.randint(0, 5, (3, 8, 8))
    pooled = pixel_kd(s.mean((2, 3), keepdim=True), t.mean((2, 3), keepdim=True), 2.0)
    assert torch.allclose(sdd_loss(s, t, labels, scales=(1,), temperature=2.0), pooled, atol=1e-6)


def test_region_pooling_equals_spp_then_linear_classifier():
    torch.manual_seed(0)
    features, head = torch.randn(2, 16, 12, 12), torch.nn.Conv2d(16, 4, 1)
    for m in (1, 2, 4):
        spp_then_head = head(F.adaptive_avg_pool2d(features, m))
        assert torch.allclose(region_logits(head(features), m), spp_then_head, atol=1e-5)


def test_region_pooling_matches_adaptive_pooling_with_its_gradient():
    """The reshaped mean (regions that tile the map) and adaptive pooling (any size) agree, backward too."""
    torch.manual_seed(0)
    for h, w in ((8, 16), (13, 7)):
        x = torch.randn(2, 3, h, w, requires_grad=True)
        for m in (1, 2, 4):
            ours, ref = region_logits(x, m), F.adaptive_avg_pool2d(x, m)
            assert torch.allclose(ours, ref, atol=1e-6)
            weights = torch.randn_like(ref)
            (g_ours,) = torch.autograd.grad((ours * weights).sum(), x)
            (g_ref,) = torch.autograd.grad((ref * weights).sum(), x)
            assert torch.allclose(g_ours, g_ref, atol=1e-6)


def test_region_pyramid_from_the_finest_scale_equals_pooling_each_scale():
    torch.manual_seed(0)
    for h, w, scales in ((8, 16, (1, 2, 4)), (12, 12, (1, 3, 6)), (10, 6, (1, 2, 4)), (8, 8, (1, 3))):
        x = torch.randn(2, 3, h, w, requires_grad=True)
        pyramid = region_pyramid(x, scales)
        weights = {m: torch.randn(2, 3, m, m) for m in scales}
        (g_ours,) = torch.autograd.grad(sum((pyramid[m] * weights[m]).sum() for m in scales), x)
        ref = {m: F.adaptive_avg_pool2d(x, m) for m in scales}
        (g_ref,) = torch.autograd.grad(sum((ref[m] * weights[m]).sum() for m in scales), x)
        assert all(torch.allclose(pyramid[m], ref[m], atol=1e-6) for m in scales)
        assert torch.allclose(g_ours, g_ref, atol=1e-6)


def test_consistent_and_complementary_weights_by_hand():
    labels = torch.tensor([[[0, 0], [0, 1]]])  # global majority: 0
    teacher = torch.zeros(1, 2, 2, 2)
    teacher[0, 0] = torch.tensor([[2.0, 1.0], [3.0, 0.5]])  # teacher says class 0 everywhere
    student = torch.zeros(1, 2, 2, 2)
    student[0, 1] = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    beta = 2.0
    # global: teacher right. Local (m = 2, one pixel each): right, right, right, wrong (label 1).
    rows = [kl(teacher.mean((2, 3))[0], student.mean((2, 3))[0])]
    weights = [1.0, 1.0, 1.0, 1.0, beta]  # the complementary region is the last pixel
    rows += [kl(teacher[0, :, i, j], student[0, :, i, j]) for i in range(2) for j in range(2)]
    expected = sum(w * r for w, r in zip(weights, rows, strict=True)) / len(rows)
    assert sdd_loss(student, teacher, labels, scales=(1, 2), beta=beta).item() == pytest.approx(expected)
    # Teacher wrong globally too: the wrong local region becomes consistent, the right ones complementary.
    labels_global_1 = torch.tensor([[[1, 1], [0, 1]]])
    assert region_targets(labels_global_1, 1, 2).item() == 1
    rows2 = [kl(teacher.mean((2, 3))[0], student.mean((2, 3))[0])]
    rows2 += [kl(teacher[0, :, i, j], student[0, :, i, j]) for i in range(2) for j in range(2)]
    # local correctness: wrong, wrong, right, wrong; global wrong -> weights 1, 1, beta, 1
    expected2 = (rows2[0] + rows2[1] + rows2[2] + beta * rows2[3] + rows2[4]) / 5
    got = sdd_loss(student, teacher, labels_global_1, scales=(1, 2), beta=beta).item()
    assert got == pytest.approx(expected2)


def test_ignored_regions_are_skipped_and_the_loss_stays_finite():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 8, 8)
    labels = torch.full((2, 8, 8), 255)
    loss = sdd_loss(s, t, labels)
    assert torch.isfinite(loss) and loss.item() == 0.0
    loss.backward()
    labels[0, :4, :4] = 1  # one valid quarter: only regions touching it count
    assert region_targets(labels, 2, 3)[0].tolist() == [[1, -1], [-1, -1]]
    assert torch.isfinite(sdd_loss(s, t, labels))


def test_different_output_sizes_are_resized(tmp_path):
    s, t = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 4, 4)
    assert torch.isfinite(sdd_loss(s, t, torch.randint(0, 3, (1, 16, 16))))


def test_sdd_cli_end_to_end(tiny_data, tiny_ckpt, tmp_path):
    args = ["distill", "sdd", "--data", "folder", "--data-root", str(tiny_data), "--teacher", str(tiny_ckpt),
            "--student", "unet-mobilenetv2", "--iters", "2", "--val-every", "2", "--batch", "2", "--imgsz", "64", "128",
            "--workers", "0", "--device", "cpu", "--scales", "1", "--scales", "2",
            "--out", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r/weights/best.safetensors").is_file()
    header = (tmp_path / "r/metrics.csv").read_text().splitlines()[0]
    assert "sdd" in header and "kd" in header and "ce" in header
    no_teacher = CliRunner().invoke(app, ["distill", "sdd", "--data", "folder", "--data-root", str(tiny_data)])
    assert no_teacher.exit_code != 0 and "--teacher" in no_teacher.stderr
