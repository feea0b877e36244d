"""The quick start's claim, measured over seeds: `distilkit demo`'s exact experiment (distilkit/cli/demo.py's
DEMO) at each seed, its five target figures per seed, mean +- std, and on how many seeds DUDA's small student
is ahead of the source-only model and of the equal-step control. Written to docs/benchmarks.md (block
`demo<tag>`) and docs/results/demo<tag>.json after every seed.

`--set key=value` changes one entry of the experiment (a JSON value; `duda_args.key=value` for DUDA's own
options), for trying a setting before it becomes the demo's. The run directories are per tag and seed; a tag's
first run copies in the untagged source models of its seed, and finished arms of exactly the same experiment
are reused, so a setting that only changes DUDA retrains only DUDA and the control.

    python benchmarks/demo.py --seeds 0 1 2 3 4
    python benchmarks/demo.py --seeds 0 1 2 --tag=-lr2e-4 --set lr=2e-4
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import DOCS, machine, mean_std, write_block  # noqa: E402

from distilkit.cli.demo import DEMO  # noqa: E402
from distilkit.engine.uda_compare import UdaComparison, run_comparison  # noqa: E402
from distilkit.utils.files import write_json  # noqa: E402

COLUMNS = {"teacher_source_only": "large, source only", "student_source_only": "small, source only",
           "student_continued": "equal-step control", "duda_teacher": "LT after DUDA",
           "duda_student": "DUDA small student"}  # fmt: skip


def experiment(sets: list[str]) -> dict:
    """DEMO with each `key=value` (JSON value, else a string) applied; `duda_args.key` reaches into DUDA's options."""
    exp = {**DEMO, "duda_args": dict(DEMO["duda_args"]), "aug": dict(DEMO["aug"])}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep:
            sys.exit(f"--set {item}: expected key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        outer, _, inner = key.partition(".")
        if outer not in exp:
            sys.exit(f"--set {item}: the demo has no '{outer}' (it has {', '.join(exp)})")
        if inner:
            exp[outer][inner] = value
        else:
            exp[outer] = tuple(value) if isinstance(value, list) else value
    return exp


def lines(rows: list[dict], cmd: str, exp: dict) -> list[str]:
    """One row per seed, mean +- std, and how often DUDA's student is ahead of each baseline."""
    pct = {k: [100 * r[k] for r in rows] for k in COLUMNS}
    gains = {
        "vs source only": [d - s for d, s in zip(pct["duda_student"], pct["student_source_only"], strict=True)],
        "vs control": [d - c for d, c in zip(pct["duda_student"], pct["student_continued"], strict=True)],
    }
    cols = ["seed", *COLUMNS.values(), *gains, "minutes"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" + "---:|" * (len(cols) - 1)]
    for i, r in enumerate(rows):
        cells = [str(r["seed"]), *(f"{pct[k][i]:.1f}" for k in COLUMNS), *(f"{g[i]:+.1f}" for g in gains.values())]
        out.append("| " + " | ".join([*cells, f"{r['wall_s'] / 60:.1f}"]) + " |")
    if len(rows) > 1:
        spread = [mean_std(v) for v in [*pct.values(), *gains.values()]]
        out.append("| " + " | ".join(["mean +- std", *spread, ""]) + " |")
    ahead = "; ".join(f"ahead of {name.removeprefix('vs ')} on {sum(round(g, 1) > 0 for g in v)} of {len(v)} seeds"
                      for name, v in gains.items())  # ahead as printed: +0.0 is level  # fmt: skip
    changed = {k: v for k, v in exp.items() if v != DEMO.get(k)}
    return [
        f"Measured with `{cmd}` on {machine()}: the demo's experiment"
        + (f" with {changed}" if changed else "")
        + f"; target mIoU (%) on the first {exp['val_limit']} {exp['tgt']} val images. DUDA's student: {ahead}.",
        "",
        *out,
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--tag", default="", help="suffix of the run directories, the docs block and the results file")
    p.add_argument("--out", type=Path, default=Path("runs/bench-demo"))
    args = p.parse_args()
    exp = experiment(args.sets)
    cmd = " ".join(["python", "benchmarks/demo.py", *sys.argv[1:]])
    name, rows = f"demo{args.tag}", []
    for seed in args.seeds:
        for role in ("teacher-source", "student-source"):  # a copy: a changed source setting retrains the copy
            base, mine = args.out / f"s{seed}" / role, args.out / f"s{seed}{args.tag}" / role
            if args.tag and base.is_dir() and not mine.exists():
                shutil.copytree(base, mine)
        c = UdaComparison(**exp, out=args.out / f"s{seed}{args.tag}", workers=0, device="cpu", seed=seed,
                          command="demo")  # fmt: skip
        start = time.perf_counter()
        rows.append({"seed": seed, **run_comparison(c), "wall_s": time.perf_counter() - start})
        write_json(DOCS / "results" / f"{name}.json", {"command": cmd, "seeds": rows})
        body = "\n".join(lines(rows, cmd, exp))  # after each seed: a stopped run keeps its figures
        print(body)
        print(f"written to {write_block('benchmarks.md', name, body)}")


if __name__ == "__main__":
    main()
