"""Results as a person reads them: rich tables, plus the same numbers as JSON/CSV and plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rich.table import Table

from distilkit.utils.console import console, styled
from distilkit.utils.files import atomic_write, write_json


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def eval_table(results: dict, title: str) -> Table:
    table = Table(title=title)
    table.add_column("class")
    table.add_column("IoU", justify="right")
    table.add_column("Acc", justify="right")
    table.add_column("pixels", justify="right")
    for name, r in results["per_class"].items():
        table.add_row(name, _pct(r["iou"]), _pct(r["acc"]), f"{r['pixels']:,}")
    table.add_section()
    table.add_row(styled(("mIoU", "bold")), styled((_pct(results["miou"]), "bold")), _pct(results["mean_acc"]), "")
    scored = results.get("scored")
    table.caption = (
        (
            f"mIoU over {scored} of the {len(results['per_class'])} classes listed (a class neither in the ground "
            "truth nor predicted has no IoU)  "
            if scored is not None and scored < len(results["per_class"])
            else ""
        )
        + f"pixel acc {_pct(results['pixel_acc'])}  mean class acc {_pct(results['mean_acc'])}  "
        f"{results['images']} images at {results['images_per_s']:.1f} img/s"
    )
    return table


def report_eval(results: dict, run_dir: Path, title: str) -> None:
    """What every command that evaluates ends with: the results saved, then the per-class table printed (a
    failure to print loses nothing)."""
    save_eval(results, run_dir, title)
    print_table(eval_table(results, title))


def save_eval(results: dict, run_dir: Path, title: str, stem: str = "results") -> None:
    """results.json (everything), results.csv (per class) and per_class_iou.png (titled with `title` and the
    run directory, so a plot found alone says what it shows)."""
    write_json(run_dir / f"{stem}.json", results)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["class", "iou", "acc", "pixels"])
    for name, r in results["per_class"].items():
        writer.writerow([name, r["iou"], r["acc"], r["pixels"]])
    writer.writerow(["mIoU", results["miou"], results["mean_acc"], ""])
    atomic_write(run_dir / f"{stem}.csv", lambda p: p.write_text(buf.getvalue()))
    plot_per_class(results, run_dir / "per_class_iou.png", f"{title}\n{run_dir}")


def plot_per_class(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, r in results["per_class"].items() if r["iou"] is not None]
    values = [100 * results["per_class"][n]["iou"] for n in names]
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(names) + 2), 3.5))
    ax.bar(names, values, color="#4c72b0")
    ax.axhline(100 * results["miou"], color="#c44e52", ls="--", label=f"mIoU {100 * results['miou']:.1f}")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)


def compare_table(summary: list[dict], title: str) -> Table:
    """`distilkit compare`'s table: each arm's mIoU over seeds and its difference to the student alone."""
    table = Table(title=title)
    for col in ("arm", "mIoU mean +- std", "per seed", "vs alone (paired)", "train min"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    for e in summary:
        diff = "" if e["diff_mean"] is None else f"{e['diff_mean']:+.2f} +- {e['diff_std']:.2f}"
        table.add_row(e["arm"], f"{e['mean']:.2f} +- {e['std']:.2f}", ", ".join(f"{m:.1f}" for m in e["miou"]), diff,
                      f"{e['train_s'] / 60:.1f}")  # fmt: skip
    return table


def print_table(table: Table) -> None:
    """The table, with its title above and caption below printed as lines of their own: inside the table rich
    wraps them to its width, mid-phrase. Cells, title and caption are data: the console reads no markup."""
    title, caption = table.title, table.caption
    table.title = table.caption = None
    if title:
        console.print(styled((str(title), "bold")), highlight=False)
    console.print(table)
    if caption:
        console.print(caption, style="dim", highlight=False)
    table.title, table.caption = title, caption
