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
    """An endless stream of (index, augmentation seed): a fresh permutation per epoch, from `start` on.

    With `world` > 1, rank r takes every world-th sample, so the ranks see disjoint shards of each batch.
    """

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world: int = 1, indices=None):
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world
        self.indices = indices  # optional callable epoch -> index sequence (e.g. a DPP selection)

    def epoch_order(self, epoch: int) -> list[int]:
        if self.indices is not None:
            return list(self.indices(epoch))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start * self.world + self.rank
        epoch, offset = 0, position
        order = self.epoch_order(epoch)
        while offset >= len(order):
            offset -= len(order)
            epoch += 1
            order = self.epoch_order(epoch)
        while True:
            while offset < len(order):
                yield order[offset], (self.seed * 7919 + epoch) * 10_000_019 + offset
                offset += self.world
            offset -= len(order)
            epoch += 1
            order = self.epoch_order(epoch)


class TrainView(Dataset):
    """Augmented, normalised crops of a dataset, addressed by (index, augmentation seed).

    `order(epoch)` replaces the shuffled epoch order (rare class sampling, sample selection); `style` is a
    dataset whose images restyle each crop by Fourier domain adaptation (source rendered as target).
    """

    def __init__(
        self, dataset: SegDataset, size: tuple[int, int], aug: AugmentConfig, mean, std,
        order: Callable[[int], list[int]] | None = None, style: SegDataset | None = None, style_beta: float = 0.01,
    ):  # fmt: skip
        self.dataset, self.size, self.aug, self.mean, self.std = dataset, tuple(size), aug, mean, std
        self.order, self.style, self.style_beta = order, style, style_beta

    def __getstate__(self) -> dict:
        # Workers only load samples; the order lives with the sampler in the main process (and may hold
        # a method's networks, which must not be copied into every worker).
        return {**self.__dict__, "order": None}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        index, aug_seed = key
        image, label = self.dataset.load(index)
        g = torch.Generator().manual_seed(int(aug_seed) % (2**63))
        img, lbl = train_transform(image, label, self.size, self.aug, g)
        if self.style is not None:
            ref = self.style.load(int(torch.randint(len(self.style), (), generator=g)))[0]
            img = fda(img, resize_image(to_tensor(ref), self.size), self.style_beta)
        return normalize(img, self.mean, self.std), lbl, index


class EvalView(Dataset):
    """Normalised images and labels at native resolution (inference resizes, the metric does not)."""

    def __init__(self, dataset: SegDataset, mean, std):
        self.dataset, self.mean, self.std = dataset, mean, std

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, label = self.dataset.load(index)
        return normalize(to_tensor(image), self.mean, self.std), torch.from_numpy(label), index


def collate(batch):
    """Stack when all samples share a size; otherwise keep a list (inference handles both)."""
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
    stream = SeededStream(len(view), seed, start=start_step * batch, rank=rank, world=world, indices=view.order)
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


def eval_loader(view: EvalView, batch: int, workers: int) -> DataLoader:
    # Its own generator: evaluating must not move the global RNG, or results would depend on --val-every.
    return DataLoader(
        view, batch_size=batch, shuffle=False, num_workers=workers, collate_fn=collate, generator=torch.Generator()
    )
