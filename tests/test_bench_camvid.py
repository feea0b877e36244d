"""benchmarks/camvid.py keeps results that outlive their run directories: a recorded arm is taken only for exactly
its experiment and seed, and says which teacher it learnt from."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
camvid = pytest.importorskip("camvid")


def args(**kw) -> argparse.Namespace:
    base = dict(camvid="/data/camvid", teacher="unet-efficientnet-lite2", teacher_iters=1000, iters=300,
                imgsz=[160, 224], batch=8, lr=6e-4, jitter=0.2, workers=1, out=Path("runs/x"), teacher_run=None,
                teacher_imgsz=None)  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def entry(arm) -> dict:
    return {"arm": arm.name, "seeds": [0, 1], "miou": [30.0, 31.0], "train_s": 10.0, "iters": 300,
            "checkpoints": ["a", "b"], "config": camvid.experiment(arm.cfg)}  # fmt: skip


def test_a_recorded_arm_is_taken_for_its_experiment_and_seed_only():
    kd1 = camvid.arm_of(args(), "fastlite", "kd", 1, "t.safetensors")
    row = camvid.recorded_row(entry(kd1), kd1, 48.2)
    assert (row["miou"], row["checkpoint"], row["recorded"], row["teacher_miou"]) == (31.0, "b", True, 48.2)
    # the data root and seed are not the experiment; every other setting is
    moved = camvid.arm_of(args(camvid="/elsewhere"), "fastlite", "kd", 0, "t.safetensors")
    assert camvid.recorded_row(entry(kd1), moved, 48.2)["miou"] == 30.0
    assert camvid.recorded_row(entry(kd1), camvid.arm_of(args(), "fastlite", "kd", 2, "t.safetensors"), 48.2) is None
    longer = camvid.arm_of(args(iters=1000), "fastlite", "kd", 1, "t.safetensors")
    assert camvid.recorded_row(entry(kd1), longer, 48.2) is None
    variant = camvid.arm_of(args(), "fastlite", "kd[kd_weight=0.25]", 1, "t.safetensors")
    assert camvid.recorded_row(entry(kd1), variant, 48.2) is None
    assert camvid.recorded_row(None, kd1, 48.2) is None


def test_the_table_says_which_rows_learnt_from_another_teacher_run():
    rows = {"fastlite": [{"teacher_mious": [None]}, {"teacher_mious": [48.153, 48.153]}, {"teacher_mious": [48.4]}]}
    note = camvid.teacher_note(rows, {"miou": 48.4})
    assert "48.2" in note and "48.4" in note
    assert camvid.teacher_note({"fastlite": [{"teacher_mious": [48.4, None]}]}, {"miou": 48.4}) == ""


def test_a_teacher_at_another_crop_has_its_own_run_and_is_scored_at_the_students_scale(tmp_path):
    assert camvid.teacher_dir(args()) == Path("runs/x/teacher-unet-efficientnet-lite2-1000")
    big = args(teacher_imgsz=[192, 256])
    assert camvid.teacher_dir(big) == Path("runs/x/teacher-unet-efficientnet-lite2-1000-192x256")
    # the students' scale: read from the cache beside the run (evaluating is the engine's, tested there)
    ckpt = tmp_path / "weights" / "last.safetensors"
    ckpt.parent.mkdir()
    (tmp_path / "at-160x224.json").write_text('{"miou": 51.5}')
    row = camvid.at_students_scale(big, {"miou": 57.0, "checkpoint": str(ckpt)})
    assert (row["miou"], row["miou_own_scale"]) == (51.5, 57.0)
    caption = camvid.table(big, {**row, "model": "unet-efficientnet-lite2", "train_s": 1.0}, {})
    assert "at crop 192x256 (57.0 at that scale" in caption and "**51.5**" in caption


def recorded_entry(student: str, method: str, mious: list[float]) -> dict:
    """A results-file entry of `method` at the command line's defaults (so its experiment is the one asked for)."""
    rows = []
    for seed, miou in enumerate(mious):
        arm = camvid.arm_of(args(), student, method, seed, "t.safetensors")
        learnt = None if method == "alone" else 48.4
        rows.append({"arm": arm.name, "seed": seed, "miou": miou, "train_s": 60.0, "iters": 300, "paired_init": True,
                     "checkpoint": f"old/{method}-s{seed}", "teacher_miou": learnt, "method": method, "base": None,
                     "config": camvid.experiment(arm.cfg)})  # fmt: skip
    model = camvid.STUDENTS[student][0]
    return [{"task": "camvid", "student": model, **e} for e in camvid.summary_of(rows)][0]


def test_each_trained_seed_is_in_the_results_file_at_once_and_earlier_seeds_stay(tmp_path, monkeypatch):
    """A call stopped after one of three seeds (an interrupted session) leaves the results file with that seed
    new, the two it had not redone yet as they were, and every other arm and student untouched."""
    import json

    before = [recorded_entry("fastlite", "alone", [34.0, 37.0, 32.0]),
              recorded_entry("fastlite", "kd", [33.0, 36.0, 31.0]), recorded_entry("b0", "alone", [30.0])]  # fmt: skip
    (tmp_path / "results").mkdir()
    results = tmp_path / "results" / "camvid.json"
    teacher = {"model": "unet-efficientnet-lite2", "miou": 48.4, "checkpoint": "t.safetensors", "train_s": 1.0}
    results.write_text(json.dumps({"teacher": teacher, "arms": before}))
    monkeypatch.setattr(camvid, "DOCS", tmp_path)
    monkeypatch.setattr(camvid, "teacher_arm", lambda a, r: teacher)
    monkeypatch.setattr(camvid, "finished", lambda run_dir, cfg: False)
    calls = []

    def run_arm(arm, reuse):
        if calls:
            raise KeyboardInterrupt  # the session ends during the second seed
        calls.append(arm.seed)
        return {"arm": arm.name, "seed": arm.seed, "miou": 40.0, "train_s": 70.0, "iters": 300,
                "paired_init": True, "checkpoint": "new/kd-s0"}  # fmt: skip

    monkeypatch.setattr(camvid, "run_arm", run_arm)
    argv = ["camvid.py", "--camvid", "/data/camvid", "--out", "runs/x", "--students", "fastlite", "--methods", "kd",
            "--rerun-recorded"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(KeyboardInterrupt):
        camvid.main()
    after = {(e["student"], e["arm"]): e for e in json.loads(results.read_text())["arms"]}
    kd = after[("fastlitessnet", "kd")]
    assert (kd["seeds"], kd["miou"], kd["checkpoints"]) == (
        [0, 1, 2],
        [40.0, 36.0, 31.0],
        ["new/kd-s0", "old/kd-s1", "old/kd-s2"],
    )
    assert kd["diff_mean"] == pytest.approx((6.0 - 1.0 - 1.0) / 3)  # against the kept student alone, by seed
    assert after[("fastlitessnet", "alone")]["miou"] == [34.0, 37.0, 32.0]
    assert after[("segformer-b0", "alone")]["miou"] == [30.0]
    # an arm trained now under other settings than the recorded one does not keep the old seeds
    changed = [{**r, "config": {"other": True}} for r in camvid.entry_rows(before[1])[:1]]
    kept = camvid.with_earlier_seeds({"fastlite": changed}, before)["fastlite"]
    assert [(r["arm"], r["seed"]) for r in kept if r["arm"] == "kd"] == [("kd", 0)]


def test_entry_rows_reads_back_what_summary_of_wrote():
    entry = recorded_entry("fastlite", "kd", [33.0, 36.0])
    assert camvid.summary_of(camvid.entry_rows(entry)) == [{k: v for k, v in entry.items()
                                                            if k not in ("task", "student")}]  # fmt: skip
