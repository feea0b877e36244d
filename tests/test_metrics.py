"""The metric against a hand-worked confusion matrix; inference modes against each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distilkit.engine.inference import class_map, infer_logits
from distilkit.engine.metrics import confusion_matrix, summarize


def test_confusion_matrix_and_miou_by_hand():
    gt = torch.tensor([0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    cm = confusion_matrix(pred, gt, num_classes=4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]  # ignore pixel excluded
    r = summarize(cm, ["a", "b", "c", "d"])
    # IoU: a = 1 / (2 + 2 - 1) = 1/3, b = 2 / (2 + 3 - 2) = 2/3, c = 0 / 1, d absent from both: left out.
    assert r["per_class"]["a"]["iou"] == pytest.approx(1 / 3)
    assert r["per_class"]["b"]["iou"] == pytest.approx(2 / 3)
    assert r["per_class"]["c"]["iou"] == 0.0 and r["per_class"]["d"]["iou"] is None
    assert r["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert r["pixel_acc"] == pytest.approx(3 / 5)
    assert r["mean_acc"] == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_predicted_but_absent_class_counts_as_zero():
    cm = confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 0]), num_classes=2)
    r = summarize(cm, ["a", "b"])
    assert r["per_class"]["b"]["iou"] == 0.0 and r["miou"] == pytest.approx((0.5 + 0) / 2)


def test_eval_classes_restrict_the_mean_but_never_drop_a_class_that_is_there():
    # ground truth a, b, a, b; predicted a, b, b, c; the model's label space: b only
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 0, 1]), num_classes=3)
    r = summarize(cm, ["a", "b", "c"], eval_classes=[1])
    # a is in the ground truth: it counts (IoU 1/2); b: 1/3; c, predicted but absent and outside: left out
    assert r["miou"] == pytest.approx((1 / 2 + 1 / 3) / 2) and r["scored"] == 2 and "c" not in r["per_class"]
    assert summarize(cm, ["a", "b", "c"])["miou"] == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)


class Conv(torch.nn.Module):
    """A 1x1 conv 'model': inference results are easy to predict."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv(x)


def test_slide_equals_whole_for_a_pointwise_model():
    torch.manual_seed(0)
    model, x = Conv().eval(), torch.randn(1, 3, 64, 96)
    # Both modes resize to the scale at which the image covers imgsz (here 32x48), then slide uses
    # overlapping 32x32 windows: for a pointwise model, the averaged windows equal the whole image.
    whole = infer_logits(model, x, (32, 32), "whole")
    slide = infer_logits(model, x, (32, 32), "slide")
    assert whole.shape == slide.shape == (1, 2, 64, 96)
    assert torch.allclose(slide, whole, atol=1e-5)
    native = infer_logits(model, x, (64, 96), "whole")
    assert torch.allclose(native, model(x), atol=1e-5)  # at its own size: no resizing at all


def test_class_map_is_the_first_argmax_by_hand():
    logits = torch.zeros(1, 3, 1, 4)
    logits[0, :, 0, 0] = torch.tensor([0.0, 2.0, 1.0])  # 1
    logits[0, :, 0, 1] = torch.tensor([3.0, 3.0, 1.0])  # tie: the first, 0
    logits[0, :, 0, 2] = torch.tensor([-1.0, -2.0, -0.5])  # 2
    logits[0, :, 0, 3] = torch.tensor([1.0, 5.0, 5.0])  # tie: 1
    assert class_map(logits).tolist() == [[[1, 0, 2, 1]]]
    x = torch.randn(2, 11, 13, 17)
    assert torch.equal(class_map(x), x.argmax(1))


def test_overlay_blends_class_colours_and_keeps_unknown_ids():
    from distilkit.engine.sources import overlay

    image = np.full((2, 2, 3), 100, np.uint8)
    label = np.array([[0, 1], [255, 0]], np.uint8)
    out = overlay(image, label, np.array([[200, 0, 0], [0, 0, 50]], np.float32), alpha=0.5)
    # half image, half colour: (100 + 200) / 2 = 150, (100 + 0) / 2 = 50, (100 + 50) / 2 = 75 (+-1: rounding)
    assert np.abs(out[0, 0].astype(int) - [150, 50, 50]).max() <= 1
    assert np.abs(out[0, 1].astype(int) - [50, 50, 75]).max() <= 1
    assert out[1, 0].tolist() == [100, 100, 100]  # 255 (ignore) is no class: the image as it is
