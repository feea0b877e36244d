"""benchmarks/demo.py: the demo's experiment with --set changes, and its seeds table with how often DUDA is ahead."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
demo = pytest.importorskip("demo")


def row(seed: int, source: float, control: float, duda: float) -> dict:
    return {"seed": seed, "teacher_source_only": 0.07, "student_source_only": source, "student_continued": control,
            "duda_teacher": 0.2, "duda_student": duda, "wall_s": 180.0}  # fmt: skip


def test_set_changes_one_entry_and_reaches_into_dudas_options_without_touching_the_demo():
    exp = demo.experiment(["lr=2e-4", "duda_args.pseudo_keep=0.5", "imgsz=[64,128]"])
    assert exp["lr"] == 2e-4 and exp["imgsz"] == (64, 128)
    assert exp["duda_args"] == {**demo.DEMO["duda_args"], "pseudo_keep": 0.5}
    assert "pseudo_keep" not in demo.DEMO["duda_args"] and demo.DEMO["lr"] == 6e-5


@pytest.mark.parametrize("item", ["lr", "nope=1"])
def test_a_bad_set_is_one_line(item):
    with pytest.raises(SystemExit, match="--set"):
        demo.experiment([item])


def test_table_counts_a_seed_ahead_only_when_it_shows_ahead():
    # seed 0: +3.0 / +1.0; seed 1: +0.02 (prints +0.0: level, not ahead) / -2.0
    rows = [row(0, 0.10, 0.12, 0.13), row(1, 0.1498, 0.17, 0.15)]
    text = "\n".join(demo.lines(rows, "cmd", demo.experiment(["lr=1e-4"])))
    assert "ahead of source only on 1 of 2 seeds; ahead of control on 1 of 2 seeds" in text
    assert "| 0 | 7.0 | 10.0 | 12.0 | 20.0 | 13.0 | +3.0 | +1.0 | 3.0 |" in text
    mean = "| mean +- std | 7.0 +- 0.0 | 12.5 +- 3.5 | 14.5 +- 3.5 | 20.0 +- 0.0 | 14.0 +- 1.4 |"
    assert mean + " 1.5 +- 2.1 | -0.5 +- 2.1 |" in text
    assert "with {'lr': 0.0001}" in text
