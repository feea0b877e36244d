"""Self-training pieces: pseudo-labels with a confidence weight, ClassMix, rare class sampling, MIC
masking, and DUDA's class inconsistency weights."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from distilkit.data.transforms import colour_jitter


def pseudo_labels(
    logits: torch.Tensor, threshold: float = 0.968, keep: float = 1.0, ignore_index: int = 255
) -> tuple[torch.Tensor, torch.Tensor]:
    """argmax labels and q = fraction of pixels whose max probability >= threshold (one scalar per batch).

    keep < 1 makes the labels class-balanced (CBST, Zou et al. 2018): of the pixels predicted as each class,
    only the `keep` most confident fraction keeps its label, the rest become `ignore_index`, so a class the
    teacher over-predicts cannot teach its doubtful pixels (self-training's majority-class drift)."""
    prob, label = torch.softmax(logits.detach().float(), dim=1).max(dim=1)
    q = (prob >= threshold).float().mean()
    if keep < 1:
        label = label.masked_fill(~class_balanced_mask(prob, label, keep), ignore_index)
    return label, q


def class_balanced_mask(prob: torch.Tensor, label: torch.Tensor, keep: float) -> torch.Tensor:
    """True for the ceil(keep * n_c) most confident of the n_c pixels predicted as class c, for every c."""
    mask = torch.zeros_like(label, dtype=torch.bool)
    flat_prob, flat_mask = prob.reshape(-1), mask.view(-1)
    for c in label.unique():
        where = (label.reshape(-1) == c).nonzero().squeeze(1)
        top = flat_prob[where].topk(math.ceil(keep * len(where))).indices
        flat_mask[where[top]] = True
    return mask


def class_mix(
    src_img: torch.Tensor, src_lbl: torch.Tensor, tgt_img: torch.Tensor, tgt_lbl: torch.Tensor, g: torch.Generator,
    ignore_index: int = 255,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """ClassMix (DACS): paste the pixels of half of the classes present in each source label onto the target.

    Returns (mixed images, mixed labels, paste masks); labels are source labels where pasted, `tgt_lbl`
    (pseudo-labels) elsewhere.
    """
    masks = []
    for lbl in src_lbl:
        classes = lbl.unique()
        classes = classes[classes != ignore_index]
        chosen = classes[torch.randperm(len(classes), generator=g)[: (len(classes) + 1) // 2]]
        masks.append(torch.isin(lbl, chosen.to(lbl.device)))
    mask = torch.stack(masks)
    mixed = torch.where(mask[:, None], src_img, tgt_img)
    return mixed, torch.where(mask, src_lbl, tgt_lbl), mask


def rcs_probabilities(frequencies: np.ndarray, temperature: float = 0.01) -> np.ndarray:
    """P(c) = softmax((1 - f_c) / T) over the source classes' pixel frequencies f_c (rare classes first)."""
    logits = (1 - np.asarray(frequencies, dtype=np.float64)) / temperature
    p = np.exp(logits - logits.max())
    return p / p.sum()


def masked_image(image: torch.Tensor, g: torch.Generator, block: int = 64, ratio: float = 0.7) -> torch.Tensor:
    """MIC: zero out (the normalised mean) a random `ratio` of blocks, per image.

    As MIC's BlockMaskGenerator: a round(H/block) x round(W/block) grid of keep/drop draws (drop with
    probability `ratio`), resized to H x W by nearest neighbour, so blocks are about `block` pixels and
    always tile the image (352 x 480 at block 64: a 6 x 8 grid of 58.7 x 60 pixel blocks)."""
    b, _, h, w = image.shape
    grid = (max(1, round(h / block)), max(1, round(w / block)))
    keep = (torch.rand(b, 1, *grid, generator=g) > ratio).float().to(image.device)
    return image * F.interpolate(keep, size=(h, w), mode="nearest")


def blur_kernel_size(n: int) -> int:
    """DAFormer's Gaussian blur kernel for an image side of n pixels: the odd number at or just below 0.1 n."""
    k = math.ceil(0.1 * n)
    return max(1, k if k % 2 else k - 1)


def strong_transform(raw: torch.Tensor, g: torch.Generator, strength: float = 0.2, p_jitter: float = 0.8,
                     p_blur: float = 0.5) -> torch.Tensor:  # fmt: skip
    """DACS/DAFormer's strong augmentation of B x 3 x H x W images in [0, 1] (on mixed images, and on the
    target image before MIC masks it): with probability `p_jitter` brightness, contrast, saturation and hue
    jitter of `strength`, then with probability `p_blur` a Gaussian blur of sigma U(0.15, 1.15) and a kernel
    of about a tenth of the image. Parameters are drawn per batch, as the reference draws them per call."""
    if torch.rand((), generator=g).item() < p_jitter:
        hue = strength * (2 * torch.rand((), generator=g).item() - 1)
        raw = torch.stack([TF.adjust_hue(colour_jitter(im, strength, g), hue) for im in raw])
    if torch.rand((), generator=g).item() < p_blur:
        sigma = 0.15 + torch.rand((), generator=g).item()
        kernel = [blur_kernel_size(raw.shape[-2]), blur_kernel_size(raw.shape[-1])]
        raw = TF.gaussian_blur(raw, kernel_size=kernel[::-1], sigma=sigma)
    return raw


def class_inconsistency(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DUDA stage 2 from a confusion matrix of (argmax LT, argmax SS): I_c = 1 - IoU_c (0 for a class absent
    from both), and the weights I'_c = C * I_c / sum(I), clipped to [0, 2]."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.ones_like(tp))
    inc = 1 - iou
    c = cm.shape[0]
    weights = (c * inc / inc.sum()).clamp(0, 2) if inc.sum() > 0 else torch.ones_like(inc)
    return inc.float(), weights.float()
