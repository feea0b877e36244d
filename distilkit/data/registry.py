"""Name -> dataset builder, and where each dataset's files live."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from distilkit.errors import DistilkitError

_DATASETS: dict[str, Callable[..., object]] = {}


def register_dataset(*names: str) -> Callable:
    """Register a builder `fn(root: Path | None, split: str) -> SegDataset` under one or more names."""

    def wrap(fn: Callable) -> Callable:
        for name in names:
            _DATASETS[name] = fn
        return fn

    return wrap


def dataset_names() -> list[str]:
    return sorted(_DATASETS)


def dataset_table() -> list[tuple[str, str]]:
    """(name, the first line of its builder's docstring) for every registered data set."""
    import distilkit.data  # noqa: F401  (registration)

    return [(n, (_DATASETS[n].__doc__ or "").strip().split("\n")[0]) for n in dataset_names()]


def data_root(explicit: str | Path | None) -> Path | None:
    """`--data-root` wins, then the DISTILKIT_DATA environment variable."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("DISTILKIT_DATA")
    return Path(env).expanduser() if env else None


def build_dataset(name: str, split: str = "train", root: str | Path | None = None, skip_bad: bool = False):
    """Build dataset `name` for `split`, its files under `root` (or a per-dataset default below it).

    `skip_bad`: a corrupt or mismatched sample is logged and left out instead of stopping the run."""
    if name not in _DATASETS:
        raise DistilkitError(f"unknown dataset '{name}'; known: {', '.join(dataset_names())}")
    dataset = _DATASETS[name](data_root(root), split)
    dataset.skip_bad = skip_bad
    return dataset


def find_root(root: Path | None, default_subdir: str, looks_right: Callable[[Path], bool], layout: str, name: str):
    """Pick `root` itself or `root/default_subdir`, whichever holds the expected layout; else one clear error."""
    if root is None:
        raise DistilkitError(
            f"dataset '{name}' needs files: pass --data-root PATH or set DISTILKIT_DATA "
            f"(expected {layout} under PATH or PATH/{default_subdir})"
        )
    for candidate in (root, root / default_subdir):
        if candidate.is_dir() and looks_right(candidate):
            return candidate
    raise DistilkitError(f"no {name} data at {root}: expected {layout} under it or under {root / default_subdir}")
