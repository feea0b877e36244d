"""Options shared by every command, with one name and one meaning everywhere.

This module imports no torch: `--help` must stay fast.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Seed = Annotated[int, typer.Option("--seed", help="Fixes data order, initialisation and augmentation.")]
ImgSz = Annotated[
    tuple[int, int] | None,
    typer.Option("--imgsz", help="Input size H W (training crop; inference resizes to cover it).", show_default=False),
]
Batch = Annotated[int, typer.Option("--batch", help="Images per step (per process).")]
Workers = Annotated[int, typer.Option("--workers", help="Data-loading worker processes.")]
Out = Annotated[Path | None, typer.Option("--out", help="Run directory (default: runs/<command>/<name>, incremented).")]
Name = Annotated[str, typer.Option("--name", help="Run name under runs/<command>/.")]
ExistOk = Annotated[bool, typer.Option("--exist-ok", help="Reuse an existing run directory.")]
DataRoot = Annotated[Path | None, typer.Option("--data-root", help="Where datasets live (default: $DISTILKIT_DATA).")]
Amp = Annotated[bool, typer.Option("--amp", help="Mixed precision: bf16 on CPU, fp16 on CUDA.")]
Pretrained = Annotated[
    str | None,
    typer.Option(
        "--pretrained",
        help="Encoder init: 'imagenet' (offline for efficientnet-lite encoders, else a download) or a weights file.",
    ),
]
# photometric augmentation of the labelled training crops (source crops, for adaptation methods)
Jitter = Annotated[float, typer.Option("--jitter", help="Brightness/contrast/saturation jitter strength (0: off).")]
Hue = Annotated[float, typer.Option("--hue", help="Hue rotation, up to +-this of the colour wheel (0.5: any hue).")]
Grey = Annotated[float, typer.Option("--grey", help="Probability of a greyscale training crop.")]
SkipBad = Annotated[
    bool, typer.Option("--skip-bad", help="Log and leave out corrupt or mismatched samples instead of stopping.")
]


def augment(jitter: float, hue: float, grey: float) -> dict:
    """The `aug` entry of method_args (an AugmentConfig's photometric fields), checked for range."""
    from distilkit.errors import DistilkitError

    if not (0 <= jitter < 1 and 0 <= hue <= 0.5 and 0 <= grey <= 1):
        raise DistilkitError(
            f"augmentation out of range: --jitter {jitter} (0..1), --hue {hue} (0..0.5), --grey {grey} (0..1)"
        )
    return {"jitter": jitter, "hue": hue, "grey": grey}


def check(flag: str, value, low: float, high: float | None = None) -> None:
    """A numeric option of a command that builds no TrainConfig (which checks its own), checked before
    anything is created: one line otherwise. None passes (an unset optional option)."""
    from distilkit.errors import DistilkitError

    if value is None:
        return
    for v in value if isinstance(value, tuple | list) else (value,):
        if v < low or (high is not None and v > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            shown = " ".join(map(str, value)) if isinstance(value, tuple | list) else value
            raise DistilkitError(f"{flag} {shown}: expected {bound}")


def user_errors(fn):
    """Turn a DistilkitError into one clear line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from distilkit.errors import DistilkitError, one_line

        try:
            return fn(*args, **kwargs)
        except DistilkitError as e:
            typer.secho(f"error: {one_line(e)}", fg="red", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.secho("interrupted", fg="red", err=True)
            raise typer.Exit(130) from None
        except MemoryError:
            typer.secho("error: out of memory; lower --batch or --imgsz", fg="red", err=True)
            raise typer.Exit(1) from None

    return wrapper
