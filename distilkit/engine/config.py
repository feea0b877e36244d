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
    train_limit: int | None = None  # train on the first N images of each training set only (smoke runs)
    log_every: int = 10
    eval_mode: str = "whole"
    seed: int = 0
    workers: int = 2
    skip_bad: bool = False  # log and leave out corrupt or mismatched samples instead of stopping
    device: str = "auto"
    method_args: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every field against the one schema (distilkit/schema.py: types, ranges on both sides, enumerations,
        the method's arguments, rules across fields), before anything is created: one line naming the option
        otherwise, whether it came from a flag, --config, a hand-edited args.json or the Python API."""
        from distilkit.schema import check_train_settings

        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(values["imgsz"], tuple):
            values["imgsz"] = list(values["imgsz"])
        if not isinstance(self.method_args, dict) or not isinstance(self.model_args, dict):
            raise DistilkitError("method_args and model_args must be JSON objects (a hand-edited args.json?)")
        check_train_settings(values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        if not path.is_file():
            raise DistilkitError(f"cannot resume: {path} not found (is this a distilkit run directory?)")
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DistilkitError(f"cannot read {path}: not valid JSON ({e.__class__.__name__}; truncated?)") from None
        if not isinstance(raw, dict):
            raise DistilkitError(f"cannot read {path}: expected a JSON object of training settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in raw if k not in known)
        if unknown:
            from distilkit.schema import nearest, printable

            raise DistilkitError(f"cannot read {path}: unknown setting '{printable(unknown[0])}'"
                                 f"{nearest(unknown[0], known)}")  # fmt: skip
        values = dict(raw)
        if isinstance(values.get("imgsz"), list):
            values["imgsz"] = tuple(values["imgsz"])
        return cls(**values)


def same_experiment(done: TrainConfig, wanted: TrainConfig) -> bool:
    """Whether a run recorded as `done` (its args.json) is the experiment `wanted` asks for. A method writes its
    defaults into method_args and SAKD its own length into iters; both are the request's, not a difference."""
    got, want = json.loads(done.to_json()), json.loads(wanted.to_json())  # tuples and lists alike
    got["iters"] = want["iters"]
    got["method_args"] = {k: got["method_args"].get(k) for k in want["method_args"]}
    return got == want


def cli_name(command: str) -> str:
    """A run's recorded command as typed: distill-duda -> distill duda."""
    return command.replace("-", " ", 1) if command.startswith("distill-") else command


def resume_config(path: Path, device: str | None = None, command: str | None = None) -> tuple[TrainConfig, Path]:
    """`--resume` takes a run dir or any file in it (weights/last.state.pt); the run's args.json says the rest.
    `command`: the command resuming, refused when another command made the run."""
    path = Path(path)
    run_dir = path if path.is_dir() else next((p for p in path.parents if (p / "args.json").is_file()), path.parent)
    cfg = TrainConfig.from_file(run_dir / "args.json")
    if command is not None and cfg.command != command:
        raise DistilkitError(f"cannot resume {run_dir} with `distilkit {cli_name(command)}`: `distilkit "
                             f"{cli_name(cfg.command)}` made it; resume it with that command")  # fmt: skip
    if not (run_dir / "weights" / "last.state.pt").is_file():
        raise DistilkitError(f"cannot resume {run_dir}: no weights/last.state.pt (it was stopped before its first "
                             "training state was saved); start a new run")  # fmt: skip
    if device:
        cfg.device = device
    return cfg, run_dir
