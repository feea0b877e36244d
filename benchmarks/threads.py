"""Threads: a short `train-teacher` and a video `predict`, each as a whole `distilkit` process, with OpenMP's
default thread count (every core) against distilkit's default (`set_threads`: the cores left after the
data-loading workers) and against one thread, on this machine idle and with one busy process beside it (the
"another process used the CPU" of the first-hour report). Settings alternate round by round (A B C A B C),
medians are quoted; written to docs/benchmarks.md.

    python benchmarks/threads.py --camvid ../shared/data/camvid
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import machine, write_block, write_clip  # noqa: E402

from distilkit.data import build_dataset  # noqa: E402
from distilkit.utils.device import cpu_cores  # noqa: E402

CLI = [sys.executable, "-m", "distilkit"]


def busy() -> subprocess.Popen:
    """One process that keeps one core busy (pure Python, no threads of its own)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--camvid", required=True, help="CamVid root (real frames for training and the video)")
    p.add_argument("--iters", type=int, default=20, help="train-teacher iterations per timed run")
    p.add_argument("--frames", type=int, default=120, help="frames of the predicted video")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    cores = cpu_cores()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    settings = {f"--threads {cores} (OpenMP's default)": ["--threads", str(cores)], "default": [],
                "--threads 1": ["--threads", "1"]}  # fmt: skip
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = [*CLI, "train-teacher", "--data", "camvid", "--data-root", args.camvid, "--model", "fastlitessnet",
                 "--imgsz", "160", "224", "--iters", str(args.iters), "--val-every", str(args.iters), "--val-limit",
                 "8", "--batch", "8", "--workers", "2", "--exist-ok"]  # fmt: skip
        subprocess.run([*train, "--out", str(tmp / "ckpt")], env=env, check=True, stdout=subprocess.DEVNULL)
        ckpt = tmp / "ckpt" / "weights" / "last.safetensors"
        val = build_dataset("camvid", "val", args.camvid)
        video = write_clip(tmp / "clip.mp4", (val.load(i % len(val))[0] for i in range(args.frames)))
        predict = [*CLI, "predict", str(video), "--weights", str(ckpt), "--exist-ok"]
        for load in ("idle", "one busy process"):
            other = busy() if load != "idle" else None
            try:
                for task in ("train-teacher", "predict video"):
                    times: dict[str, list[float]] = {s: [] for s in settings}
                    for r in range(args.rounds):
                        for s, flags in settings.items():
                            out = tmp / f"{task[:5]}-{r}-{len(times[s])}-{flags[-1] if flags else 'auto'}"
                            cmd = [*(train if task == "train-teacher" else predict), *flags, "--out", str(out)]
                            times[s].append(timed(cmd, env))
                    results[f"{load}|{task}"] = {
                        s: {"wall_s": statistics.median(times[s]),
                            **({"fps": args.frames / statistics.median(times[s])} if task != "train-teacher" else {})}
                        for s in settings
                    }  # fmt: skip
                    print(load, task, json.dumps(results[f"{load}|{task}"]), flush=True)
            finally:
                if other is not None:
                    other.kill()
    base = f"--threads {cores} (OpenMP's default)"
    rows = ["| machine | command | setting | wall s (median) | video frames/s, whole process "
            "| speed-up vs OpenMP's default |", "|---|---|---|---|---|---|"]  # fmt: skip
    for key, by_setting in results.items():
        load, task = key.split("|")
        for s, r in by_setting.items():
            fps = f"{r['fps']:.1f}" if "fps" in r else ""
            rows.append(f"| {load} | {task} | {s} | {r['wall_s']:.1f} | {fps} | "
                        f"{by_setting[base]['wall_s'] / r['wall_s']:.2f}x |")  # fmt: skip
    workers_note = "train-teacher runs with `--workers 2`, so its default is `--threads 1` on two cores"
    body = (
        f"Measured with `python benchmarks/threads.py --camvid ../shared/data/camvid --rounds {args.rounds}` on "
        f"{machine()} ({cores} cores): `train-teacher` FastLiteSSNet on CamVid, {args.iters} iterations at batch 8, "
        f"160x224, evaluation on 8 val images ({workers_note}); `predict` on a {args.frames}-frame H.264 video of "
        f"CamVid val frames with that checkpoint (decode + inference + overlay + encode; frames/s = frames / the whole "
        f"process's wall time, start-up included). Medians of {args.rounds} interleaved rounds; 'one busy "
        f"process' is a pure-Python loop on one core running beside the command.\n\n" + "\n".join(rows)
    )
    write_block("benchmarks.md", "threads", body)
    Path("runs").mkdir(exist_ok=True)
    Path("runs/bench-threads.json").write_text(json.dumps(results, indent=2))
    print(body)


if __name__ == "__main__":
    main()
