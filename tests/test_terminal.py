"""What a person reads: table titles and captions on lines of their own, messages during training on the
progress bar's stream (a line on the other stream leaves a frozen copy of the bar on a terminal), plots that
name their run and data set."""

from __future__ import annotations

from typer.testing import CliRunner

from conftest import ok
from distilkit.cli import app
from distilkit.engine import report

runner = CliRunner()


def test_captions_and_titles_are_not_wrapped_to_the_table_width():
    results = {"per_class": {"a": {"iou": 0.5, "acc": 0.6, "pixels": 10}}, "miou": 0.5, "mean_acc": 0.6,
               "pixel_acc": 0.7, "images": 3, "images_per_s": 1.5}  # fmt: skip
    title = "a-rather-long-model-name on a-rather-long-data-set-name (val, whole), final"
    with report.console.capture() as cap:
        report.print_table(report.eval_table(results, title))
    lines = cap.get().splitlines()
    assert title in lines  # one line of its own, not broken over the table's narrow width
    assert "pixel acc 70.00  mean class acc 60.00  3 images at 1.5 img/s" in lines


def test_evaluations_during_training_print_on_the_bar_stream(tiny_data, tmp_path):
    argv = ["train-teacher", "--data", "folder", "--data-root", str(tiny_data), "--model", "fastlitessnet", "--iters",
            "2", "--val-every", "1", "--imgsz", "64", "128", "--batch", "2", "--workers", "0"]  # fmt: skip
    result = ok(runner.invoke(app, [*argv, "--out", str(tmp_path / "r")]))
    assert "step 1/2: val mIoU" in result.stderr and "val mIoU" not in result.stdout.split("final")[0]
    assert "on folder (val), final" in result.stdout


def test_plots_name_their_run(tmp_path, monkeypatch):
    import matplotlib.axes

    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda ax, t, **kw: titles.append(t) or real(ax, t, **kw))
    results = {"per_class": {"a": {"iou": 0.5, "acc": 0.6, "pixels": 10}}, "miou": 0.5, "mean_acc": 0.6,
               "pixel_acc": 0.7, "images": 3, "images_per_s": 1.5}  # fmt: skip
    report.save_eval(results, tmp_path, "m on d (val), final")
    assert titles == [f"m on d (val), final\n{tmp_path}"] and (tmp_path / "per_class_iou.png").is_file()
