"""The whole experiment in one record: saved as args.json in the run dir, read back by --resume."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from distilkit.errors import DistilkitError


@dataclass
class TrainConfig:
    command: str = "train-teacher"
    method: str = "supervised"
    data: str = "synth-gta"
    val_data: str | None = None  # default: `data`'s val split (a target set for adaptation methods)
    val_split: str = "val"
    data_root: str | None = None
    model: str = "segformer-b0"
    model_args: dict = field(default_factory=dict)  # architecture arguments, e.g. {"width": 0.5}
    pretrained: str | None = None
    imgsz: tuple[int, int] | None = None  # None: the dataset's default
    batch: int = 8
    iters: int = 1000
    optimizer: str = "adamw"
    lr: float = 6e-4
    head_lr_mult: float = 1.0
    weight_decay: float = 0.01
    momentum: float = 0.9
    schedule: str = "poly"
    power: float = 1.0
    warmup: int = 100
    grad_clip: float | None = None
    amp: bool = False
    val_every: int = 250
    val_limit: int | None = None  # evaluate on the first N val images only (quick runs, big val sets)
    log_every: int = 10
    eval_mode: str = "whole"
    seed: int = 0
    workers: int = 2
    skip_bad: bool = False  # log and leave out corrupt or mismatched samples instead of stopping
    device: str = "auto"
    method_args: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        if not path.is_file():
            raise DistilkitError(f"cannot resume: {path} not found (is this a distilkit run directory?)")
        raw = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in raw.items() if k in known})
        cfg.imgsz = tuple(cfg.imgsz) if cfg.imgsz else None
        return cfg


def resume_config(path: Path, device: str | None = None) -> tuple[TrainConfig, Path]:
    """`--resume` takes a run dir or any file in it (weights/last.state.pt); the run's args.json says the rest."""
    path = Path(path)
    run_dir = path if path.is_dir() else next((p for p in path.parents if (p / "args.json").is_file()), path.parent)
    cfg = TrainConfig.from_file(run_dir / "args.json")
    if not (run_dir / "weights" / "last.state.pt").is_file():
        raise DistilkitError(f"cannot resume {run_dir}: no weights/last.state.pt (it stopped before its first save)")
    if device:
        cfg.device = device
    return cfg, run_dir
