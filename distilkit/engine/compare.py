"""Does distillation help on this data, and which method? The student alone and with each method, same schedule,
data order per seed and evaluation, over several seeds; each arm a run directory that is reused once finished.

`distilkit compare` and benchmarks/camvid.py both run their arms through here: one harness, one result format.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from distilkit.engine.checkpoint import read_meta
from distilkit.engine.config import TrainConfig, same_experiment
from distilkit.utils.files import atomic_write

ALONE = "alone"  # the arm every other is measured against: the student trained alone (train-teacher's engine)


@dataclass(frozen=True)
class Arm:
    """One (arm, seed): the run directory it trains in and the experiment it is."""

    name: str  # e.g. "alone", "kd", "sakd-cwd", "kd[kd_weight=2]"
    seed: int
    cfg: TrainConfig
    run_dir: Path


def run_finished(run_dir: Path, cfg: TrainConfig) -> bool:
    """Whether `run_dir` holds a run of exactly this experiment that reached its last step (of the requested
    length; SAKD's arms set their own, which their args.json records)."""
    last = run_dir / "weights" / "last.safetensors"
    if not ((run_dir / "args.json").is_file() and last.is_file()):
        return False
    done = TrainConfig.from_file(run_dir / "args.json")
    if cfg.method != "sakd" and done.iters != cfg.iters:
        return False
    return same_experiment(done, cfg) and read_meta(last)["metrics"].get("step") == done.iters


def finished(run_dir: Path, cfg: TrainConfig) -> bool:
    """A finished run of this experiment whose arm result is recorded, and recorded for that run: its length and
    its classes those of the checkpoint (a result that is not is said aloud, and the arm trains again)."""
    if not ((run_dir / "arm.json").is_file() and run_finished(run_dir, cfg)):
        return False
    row, meta = read_arm(run_dir / "arm.json"), read_meta(run_dir / "weights" / "last.safetensors")
    names, scored = list(meta["class_names"]), list(row["per_class"])
    classes_fit = set(scored) <= set(names) if meta.get("eval_classes") else sorted(scored) == sorted(names)
    why = None
    if row["iters"] != meta["metrics"]["step"]:
        why = f"{row['iters']} iterations, not the run's {meta['metrics']['step']}"
    elif not classes_fit:
        why = "classes that are not those of the run's data"
    if why is not None:
        from distilkit.utils.console import warn

        warn(f"{run_dir / 'arm.json'} records {why}: training this arm again")
    return why is None


def named_defaults(method: str, args: dict) -> dict:
    """`args` with the defaults that have changed named explicitly (pixel KD's temperature: 4 until 2026-12-07,
    now 1), so a finished run or recorded result of the old default is never reused as the new default's."""
    from distilkit.schema import defaults

    return {"temperature": defaults("kd")["temperature"], **args} if method == "kd" else args


def sakd_args(base: str, iters: int, batch: int, n_train: int) -> dict:
    """SAKD's arm: r = 0.5 for as many epochs as the other arms' images make, so half their steps."""
    return {"base": base, "ratio": 0.5, "epochs": max(1, round(iters * batch / n_train))}


def run_arm(arm: Arm, reuse: bool = True) -> dict:
    """Train one arm (unless `reuse` finds it finished) and return its result: mIoU (%), per-class IoU (%),
    training seconds (evaluation excluded), the optimiser steps it took, its checkpoint."""
    if not (reuse and finished(arm.run_dir, arm.cfg)):
        from distilkit.engine.trainer import run_training

        start = time.perf_counter()
        results, _, method = run_training(arm.cfg, out=arm.run_dir, exist_ok=True)
        row = {"miou": 100 * results["miou"], "train_s": results["train_time_s"], "wall_s": time.perf_counter() - start,
               "iters": method.cfg.iters, "paired_init": True,  # the student alone's init at this seed (load_model)
               "per_class": {k: None if v["iou"] is None else 100 * v["iou"]  # None: absent from val
                             for k, v in results.get("per_class", {}).items()}}  # fmt: skip
        from distilkit.utils.files import write_json

        write_json(arm.run_dir / "arm.json", row)
    row = read_arm(arm.run_dir / "arm.json")
    return {"arm": arm.name, "seed": arm.seed, **row, "checkpoint": str(arm.run_dir / "weights" / "last.safetensors")}


def read_arm(path: Path) -> dict:
    """An arm's recorded result, checked against its schema (distilkit/schema.py) before it is averaged."""
    from pydantic import ValidationError

    from distilkit.errors import DistilkitError
    from distilkit.schema import ArmResult

    try:
        row = json.loads(path.read_text())
        ArmResult.model_validate(row)
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as e:
        what = f"'{'.'.join(map(str, e.errors()[0]['loc']))}' {e.errors()[0]['msg'].lower()}" if isinstance(
            e, ValidationError) else "not valid JSON"  # fmt: skip
        raise DistilkitError(f"{path}: malformed arm result ({what}); delete it, or rerun with --no-reuse") from None
    return row


def summarise(rows: list[dict], order: list[str] | None = None) -> list[dict]:
    """One entry per arm: seeds, per-seed mIoU, mean, std, and against the student alone the mean difference
    and its spread over the seeds both have (paired by seed: the same data order)."""
    names = order or list(dict.fromkeys(r["arm"] for r in rows))
    alone = {r["seed"]: r["miou"] for r in rows if r["arm"] == ALONE}
    out = []
    for name in names:
        got = sorted((r for r in rows if r["arm"] == name), key=lambda r: r["seed"])
        if not got:
            continue
        mious = [r["miou"] for r in got]
        diffs = [r["miou"] - alone[r["seed"]] for r in got if r["seed"] in alone] if name != ALONE else []
        out.append({
            "arm": name, "seeds": [r["seed"] for r in got], "miou": mious, "mean": statistics.mean(mious),
            "std": statistics.stdev(mious) if len(mious) > 1 else 0.0,
            "diff_mean": statistics.mean(diffs) if diffs else None,
            "diff_std": statistics.stdev(diffs) if len(diffs) > 1 else (0.0 if diffs else None),
            "train_s": statistics.mean(r["train_s"] for r in got), "iters": got[0]["iters"],
            "checkpoints": [r["checkpoint"] for r in got],
        })  # fmt: skip
    return out


def plot(summary: list[dict], path: Path, title: str, line: float | None = None, line_label: str = "") -> Path:
    """mIoU by arm: the mean as a bar, the std as an error bar, every seed as a dot (a dashed line: a teacher)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(summary) + 1.5), 3.6))
    xs = range(len(summary))
    ax.bar(xs, [e["mean"] for e in summary], yerr=[e["std"] for e in summary], capsize=3, color="#8ab", zorder=1)
    for x, e in zip(xs, summary, strict=True):
        ax.scatter([x] * len(e["miou"]), e["miou"], color="k", s=10, zorder=2)
    values = [m for e in summary for m in e["miou"]] + ([line] if line is not None else [])
    if line is not None:
        ax.axhline(line, color="red", linestyle="--", linewidth=1, label=line_label)
        ax.legend(fontsize=7)
    ax.set_xticks(list(xs), [e["arm"] for e in summary], fontsize=8, rotation=20)
    ax.set_ylim(max(0.0, min(values) - 8), max(values) + 3)  # the differences, not the distance from zero
    ax.set_ylabel("val mIoU (%)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
    return path
