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
ValLimit = Annotated[
    int | None, typer.Option("--val-limit", help="Evaluate on the first N val images only (smoke runs).")
]
TrainLimit = Annotated[
    int | None,
    typer.Option("--train-limit", help="Train on the first N images of the training set(s) only (smoke runs)."),
]
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


Threads = Annotated[
    int | None,
    typer.Option("--threads", show_default=False,
                 help="CPU threads for the model (default: the cores left after --workers, or $OMP_NUM_THREADS)."),
]  # fmt: skip

NOT_REPLAYED = ("config", "out", "exist_ok", "resume")  # a rerun from config.yaml makes a new run of its own


def _fail(message: str):
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(1)


def read_config(path: Path) -> dict:
    """A YAML (or JSON, which YAML reads) mapping of option names to values."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        _fail(f"--config {path}: file not found")
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        _fail(f"--config {path}: not valid YAML or JSON ({e.__class__.__name__})")
    if data is None:
        return {}
    if not isinstance(data, dict):
        _fail(f"--config {path}: expected a mapping of option names to values")
    return data


def load_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """--config FILE: its values become the command's defaults, so flags on the command line override them;
    an unknown key or a value of the wrong type is one line naming the key."""
    from distilkit.utils.files import command_path

    command_path.set(ctx.command_path)  # called for every run (value or not): what config.yaml will name
    if value is None:
        return None
    options = {p.name: p for p in ctx.command.params if p.name not in ("config", "help")}
    defaults = {}
    for key, raw in read_config(value).items():
        name = str(key).replace("-", "_")
        if name not in options:
            _fail(f"--config {value}: unknown option '{key}' for `{ctx.command_path}`")
        opt = options[name]
        try:  # the option's own conversion, as for a value typed on the command line
            if hasattr(opt, "get_runtime_param"):  # typer >= 0.2x carries its own click
                defaults[name] = opt.get_runtime_param().coerce(raw, param=opt, ctx=ctx)
            else:
                defaults[name] = opt.type_cast_value(ctx, raw)
        except Exception as e:  # click's BadParameter (vendored or not), TypeError, ValueError
            detail = e.format_message() if hasattr(e, "format_message") else str(e)
            _fail(f"--config {value}: '{key}': {detail.strip().splitlines()[0] if detail.strip() else e!r}")
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


Config = Annotated[
    Path | None,
    typer.Option("--config", is_eager=True, callback=load_config,
                 help="YAML/JSON file of option values (a run's config.yaml reruns it); flags given here override."),
]  # fmt: skip


def replayable(params: dict) -> dict:
    """The values a run used, as config.yaml keeps them (paths as text, tuples as lists)."""

    def plain(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in params.items() if k not in NOT_REPLAYED}


def user_errors(fn):
    """Every command's wrapper: a DistilkitError becomes one clear line on stderr and exit code 1 (no
    traceback); commands with options also get --config, and the values each run used are handed to the run
    directory (config.yaml); and --threads, set before the command runs (utils.device.set_threads)."""
    import inspect

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from distilkit.errors import DistilkitError, one_line
        from distilkit.utils.files import command_path, discard_unused_run_dirs, invocation, made_run_dirs

        kwargs.pop("config", None)
        threads = kwargs.pop("threads", None)
        token = invocation.set((command_path.get(), replayable({**kwargs, "threads": threads})))
        made = made_run_dirs.set([])
        try:
            if injected:
                from distilkit.utils.device import set_threads

                set_threads(threads, reserved=kwargs.get("workers") or 0)
            return fn(*args, **kwargs)
        except DistilkitError as e:
            discard_unused_run_dirs()
            typer.secho(f"error: {one_line(e)}", fg="red", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            discard_unused_run_dirs()
            typer.secho("interrupted", fg="red", err=True)
            raise typer.Exit(130) from None
        except MemoryError:
            discard_unused_run_dirs()
            typer.secho("error: out of memory; lower --batch or --imgsz", fg="red", err=True)
            raise typer.Exit(1) from None
        finally:
            made_run_dirs.reset(made)
            invocation.reset(token)

    sig = inspect.signature(fn, eval_str=True)  # the annotations themselves: Typer reads the signature we set
    injected = bool(sig.parameters) and "config" not in sig.parameters
    if injected:
        extra = {"threads": Threads, "config": Config}
        params = [
            inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, annotation=a, default=None) for k, a in extra.items()
        ]
        wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *params])
        wrapper.__annotations__ = {**{k: p.annotation for k, p in sig.parameters.items()}, **extra}
    return wrapper
