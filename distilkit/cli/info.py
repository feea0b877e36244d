"""`distilkit models` and `distilkit datasets`: what the registries hold, so no command's --help has to list them."""

from __future__ import annotations

from distilkit.cli.options import user_errors


@user_errors
def models() -> None:
    """The registered models, and where `--pretrained imagenet` gets each one's encoder weights."""
    from rich.table import Table

    from distilkit.engine.report import print_table
    from distilkit.models import model_table

    table = Table(title="models (--model, --student, --teacher-model)")
    for col in ("name", "what", "ImageNet weights"):
        table.add_column(col)
    for row in model_table():
        table.add_row(row["name"], row["about"], row["imagenet"])
    print_table(table)


@user_errors
def datasets() -> None:
    """The registered data sets (--data, --src, --tgt, --calib-data); layouts: docs/datasets.md."""
    from rich.table import Table

    from distilkit.data.registry import dataset_table
    from distilkit.engine.report import print_table

    table = Table(title="data sets (--data-root DIR or $DISTILKIT_DATA holds their files)")
    for col in ("name", "what"):
        table.add_column(col)
    for name, about in dataset_table():
        table.add_row(name, about)
    print_table(table)
