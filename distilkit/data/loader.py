"""Data loaders for the engine: a seeded, resumable, shardable stream of training samples, and eval views.

Each training sample arrives with its own augmentation seed, derived from (seed, epoch, position), so data
order and augmentation depend on `--seed` alone: not on worker count, not on how often a run was resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from distilkit.data.base import SegDataset
from distilkit.data.style import fda
from distilkit.data.transforms import AugmentConfig, normalize, resize_image, to_tensor, train_transform
from distilkit.errors import DistilkitError


class SeededStream(Sampler):
    """An endless stream of (index, augmentation seed): a fresh permutation per epoch, from step `start_step`.

    Positions count samples of global batches of `batch * world`; rank r takes every world-th of them, so the
    ranks see disjoint shards of each global batch, together the samples one process with the whole batch
    would see. The epoch orders a global batch touches are asked for before its first sample, on every rank
    alike: an order that is computed collectively (a DPP selection) is asked for at the same step everywhere.
    """

    def __init__(self, n: int, seed: int, batch: int = 1, start_step: int = 0, rank: int = 0, world: int = 1,
                 indices=None):  # fmt: skip
        self.n, self.seed, self.batch, self.start_step, self.rank, self.world = n, seed, batch, start_step, rank, world
        self.indices = indices  # optional callable epoch -> index sequence (e.g. a DPP selection)

    def epoch_order(self, epoch: int) -> list[int]:
        if self.indices is not None:
            order = list(self.indices(epoch))
            if not order:
                raise DistilkitError(f"epoch {epoch} has no samples to train on")
            return order
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        spans: list[tuple[int, int, list[int]]] = []  # (global position of order[0], epoch, order)

        def cover(last: int) -> None:  # the orders up to global position `last`, in epoch order
            while not spans or spans[-1][0] + len(spans[-1][2]) <= last:
                first, epoch = (spans[-1][0] + len(spans[-1][2]), spans[-1][1] + 1) if spans else (0, 0)
                spans.append((first, epoch, self.epoch_order(epoch)))

        size = self.batch * self.world
        pos = self.start_step * size
        while True:
            cover(pos + size - 1)
            for p in range(pos + self.rank, pos + size, self.world):
                while spans[0][0] + len(spans[0][2]) <= p:
                    spans.pop(0)
                first, epoch, order = spans[0]
                yield order[p - first], (self.seed * 7919 + epoch) * 10_000_019 + (p - first)
            pos += size


class TrainView(Dataset):
    """Augmented, normalised crops of a dataset, addressed by (index, augmentation seed).

    `order(epoch)` replaces the shuffled epoch order (rare class sampling, sample selection); its entries are
    indices, or (index, class) pairs from rare class sampling, whose crop is re-drawn up to CROP_REDRAWS times
    (DAFormer's) until it holds more than `class_pixels` pixels of that class. `style` is a dataset whose
    images restyle each crop by Fourier domain adaptation (source rendered as target).
    """

    CROP_REDRAWS = 10

    def __init__(
        self, dataset: SegDataset, size: tuple[int, int], aug: AugmentConfig, mean, std,
        order: Callable[[int], list] | None = None, style: SegDataset | None = None, style_beta: float = 0.01,
        class_pixels: float = 0.0,
    ):  # fmt: skip
        self.dataset, self.size, self.aug, self.mean, self.std = dataset, tuple(size), aug, mean, std
        self.order, self.style, self.style_beta, self.class_pixels = order, style, style_beta, class_pixels

    def __getstate__(self) -> dict:
        # Workers only load samples; the order lives with the sampler in the main process (and may hold
        # a method's networks, which must not be copied into every worker).
        return {**self.__dict__, "order": None}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple) -> tuple[torch.Tensor, torch.Tensor, int]:
        index, aug_seed = key
        index, cls = index if isinstance(index, tuple) else (index, None)
        image, label = self._load_good(index)
        g = torch.Generator().manual_seed(int(aug_seed) % (2**63))
        img, lbl = train_transform(image, label, self.size, self.aug, g)
        for _ in range(self.CROP_REDRAWS if cls is not None and self.class_pixels > 0 else 0):
            if (lbl == cls).sum().item() > self.class_pixels:
                break
            img, lbl = train_transform(image, label, self.size, self.aug, g)
        if self.style is not None:
            ref = self.style.load(int(torch.randint(len(self.style), (), generator=g)))[0]
            img = fda(img, resize_image(to_tensor(ref), self.size), self.style_beta)
        return normalize(img, self.mean, self.std), lbl, index

    def _load_good(self, index: int) -> tuple:
        """Sample `index`, or with --skip-bad the next good one after it (a training batch needs a sample)."""
        n = len(self.dataset)
        for k in range(n):
            sample = self.dataset.load_or_skip((index + k) % n)
            if sample is not None:
                return sample
        raise DistilkitError(f"--skip-bad: no readable sample left in '{self.dataset.info.name}'")


class EvalView(Dataset):
    """Normalised images and labels at native resolution (inference resizes, the metric does not)."""

    def __init__(self, dataset: SegDataset, mean, std):
        self.dataset, self.mean, self.std = dataset, mean, std

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        sample = self.dataset.load_or_skip(index)
        if sample is None:  # --skip-bad: left out of the metric, never replaced by another image
            return None
        image, label = sample
        return normalize(to_tensor(image), self.mean, self.std), torch.from_numpy(label), index


def collate(batch):
    """Stack when all samples share a size; otherwise keep a list (inference handles both). Samples left
    out by --skip-bad (None) are dropped; a batch of nothing but those is None."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    images, labels, indices = zip(*batch, strict=True)
    if len({tuple(x.shape) for x in images}) == 1:
        return torch.stack(images), torch.stack(labels), torch.tensor(indices)
    return list(images), list(labels), torch.tensor(indices)


def _init_worker(worker_id: int) -> None:
    """One thread per worker: on a small CPU, workers must not compete with the training step's threads."""
    torch.set_num_threads(1)
    np.random.seed(torch.initial_seed() % 2**32)


def train_loader(view: TrainView, batch: int, workers: int, seed: int, start_step: int = 0, rank=0, world=1):
    if len(view) == 0:
        raise DistilkitError(f"dataset '{view.dataset.info.name}' is empty")
    stream = SeededStream(len(view), seed, batch, start_step, rank, world, indices=view.order)
    return DataLoader(
        view,
        batch_size=batch,
        sampler=stream,
        num_workers=workers,
        collate_fn=collate,
        drop_last=True,
        worker_init_fn=_init_worker,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),  # never draw from the global RNG (dropout's, on resume)
    )


def eval_loader(view: EvalView, batch: int, workers: int) -> Iterator[tuple]:
    """Batches in order; batches emptied by --skip-bad are not yielded."""
    # Its own generator: evaluating must not move the global RNG, or results would depend on --val-every.
    loader = DataLoader(
        view, batch_size=batch, shuffle=False, num_workers=workers, collate_fn=collate, generator=torch.Generator()
    )
    return (b for b in loader if b is not None)
