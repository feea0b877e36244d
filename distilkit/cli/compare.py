"""`distilkit compare`: the student alone and with each distillation method, over seeds, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distilkit.cli.options import (
    Amp,
    Batch,
    DataRoot,
    Device,
    ExistOk,
    Grey,
    Hue,
    ImgSz,
    Jitter,
    Name,
    Out,
    Pretrained,
    Workers,
    augment,
    user_errors,
)

METHODS = ("kd", "sdd", "cwd", "hdl", "sakd")


def parse_sweep(sweep: str | None) -> tuple[str | None, list]:
    """'kd_weight=0.5,1,2' -> ('kd_weight', [0.5, 1, 2]); whole numbers become integers (an integer option such
    as SAKD's grid takes them; a float option too), other numbers floats, anything else text, true/false booleans.
    Each arm's configuration checks the key and the values against its method's schema."""
    from distilkit.errors import DistilkitError

    if not sweep:
        return None, [None]
    key, sep, values = sweep.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise DistilkitError(f"--sweep {sweep}: expected OPTION=V1,V2,... (e.g. kd_weight=0.5,1,2)")

    def value(v: str):
        if v.lower() in ("true", "false"):
            return v.lower() == "true"
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    parsed = [value(v.strip()) for v in values.split(",")]
    twice = next((v for i, v in enumerate(parsed) if v in parsed[:i]), None)
    if twice is not None:  # the same arm trained twice would count as two samples of it
        raise DistilkitError(f"--sweep {sweep}: value {twice} given twice; give each value once")
    return key.strip(), parsed


@user_errors
def compare(
    teacher: Annotated[Path, typer.Option("--teacher", help="Teacher checkpoint (frozen) every method distils.")],
    data: Annotated[str, typer.Option("--data", help="Labelled training set (list: `distilkit datasets`).")],
    student: Annotated[str, typer.Option("--student", help="Student architecture.")] = "segformer-b0",
    methods: Annotated[
        list[str] | None, typer.Option("--methods", help=f"Methods to compare (repeat): {', '.join(METHODS)}.")
    ] = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seeds", help="Seeds of every arm (repeat); default 0 1 2.")
    ] = None,
    sweep: Annotated[
        str | None,
        typer.Option("--sweep", help="A grid over one method option: OPTION=V1,V2 (e.g. kd_weight=0.5,1,2)."),
    ] = None,
    sakd_base: Annotated[str, typer.Option("--sakd-base", help="SAKD's base method.")] = "kd",
    iters: Annotated[int, typer.Option("--iters", help="Training iterations of every arm.")] = 300,
    lr: Annotated[float, typer.Option("--lr", help="Base learning rate (AdamW, poly).")] = 6e-4,
    pretrained: Pretrained = None,
    val_data: Annotated[str | None, typer.Option("--val-data", help="Validation set (default: --data's val).")] = None,
    reuse: Annotated[bool, typer.Option("--reuse/--no-reuse", help="Keep arms that finished before.")] = True,
    jitter: Jitter = 0.2,
    hue: Hue = 0.0,
    grey: Grey = 0.0,
    imgsz: ImgSz = None,
    batch: Batch = 8,
    amp: Amp = False,
    device: Device = "auto",
    workers: Workers = 2,
    data_root: DataRoot = None,
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """Does distillation help on this data, and which method? Mean +- std over seeds against the student alone."""
    from dataclasses import replace

    from distilkit.data import build_dataset
    from distilkit.engine.compare import ALONE, Arm, named_defaults, plot, run_arm, sakd_args, summarise
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.report import compare_table, print_table
    from distilkit.errors import DistilkitError
    from distilkit.schema import method_keys, nearest
    from distilkit.utils.files import atomic_write, increment_run_dir, write_json

    methods, seeds = methods or ["kd", "cwd"], seeds or [0, 1, 2]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DistilkitError(f"--methods {' '.join(unknown)}: expected among {', '.join(METHODS)}")
    if len(set(seeds)) != len(seeds):
        raise DistilkitError(f"--seeds {' '.join(map(str, seeds))}: each seed once")
    key, values = parse_sweep(sweep)
    if not teacher.is_file():
        raise DistilkitError(f"--teacher {teacher}: checkpoint not found")
    aug = augment(jitter, hue, grey)
    base = TrainConfig(command="compare", data=data, val_data=val_data, data_root=str(data_root) if data_root else None,
                       model=student, pretrained=pretrained, imgsz=tuple(imgsz) if imgsz else None, batch=batch,
                       iters=iters, lr=lr, warmup=iters // 10, val_every=10**9, amp=amp, workers=workers,
                       device=device)  # fmt: skip
    n_train = len(build_dataset(data, "train", base.data_root)) if "sakd" in methods else 0
    arms: list[tuple[str, str, dict]] = [(ALONE, "supervised", {"aug": aug})]
    for m in methods:
        for v in values:
            extra = {"aug": aug, "teacher": str(teacher)}
            if m == "sakd":
                extra |= sakd_args(sakd_base, iters, batch, n_train)
            label = m if m != "sakd" else f"sakd-{sakd_base}"
            if key is not None:
                extra[key] = v
                label += f"[{key}={v:g}]" if isinstance(v, float) else f"[{key}={v}]"
            arms.append((label, m, extra))
    if key is not None:  # the swept option by name, before any arm is configured or trains
        for m in methods:
            if key not in method_keys(m):
                raise DistilkitError(f"--sweep {sweep}: unknown argument '{key}' for {m}{nearest(key, method_keys(m))}")
    # every arm's experiment built (and so validated) before the first one trains
    planned = [(label, seed, replace(base, method=method, seed=seed, method_args=named_defaults(method, extra)))
               for label, method, extra in arms for seed in seeds]  # fmt: skip
    folder = increment_run_dir("compare", name, out, exist_ok)
    rows = [run_arm(Arm(label, seed, cfg, folder / "arms" / f"{label}-s{seed}"), reuse) for label, seed, cfg in planned]
    summary = summarise(rows, [a[0] for a in arms])
    title = f"{student} on {data}: {len(seeds)} seeds, {iters} iterations, teacher {teacher.name}"
    write_json(folder / "compare.json", {"teacher": str(teacher), "student": student, "data": data, "arms": summary})
    print_table(compare_table(summary, title))  # after compare.json: a failure to print loses no result
    header = "arm,seeds,mean,std,diff_mean,diff_std,train_s," + ",".join(f"seed{s}" for s in seeds)
    lines = [header] + [
        ",".join(
            [
                e["arm"],
                " ".join(map(str, e["seeds"])),
                f"{e['mean']:.4f}",
                f"{e['std']:.4f}",
                "" if e["diff_mean"] is None else f"{e['diff_mean']:.4f}",
                "" if e["diff_std"] is None else f"{e['diff_std']:.4f}",
                f"{e['train_s']:.1f}",
                *(f"{m:.4f}" for m in e["miou"]),
            ]
        )  # fmt: skip
        for e in summary
    ]
    atomic_write(folder / "compare.csv", lambda p: p.write_text("\n".join(lines) + "\n"))
    plot(summary, folder / "compare.png", title)
    typer.echo(f"results in {folder} (compare.json, compare.csv, compare.png)")
