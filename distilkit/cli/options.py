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
    """The `aug` entry of method_args (an AugmentConfig's photometric fields; their ranges: schema.Aug)."""
    return {"jitter": jitter, "hue": hue, "grey": grey}


Threads = Annotated[
    int | None,
    typer.Option("--threads", show_default=False,
                 help="CPU threads for the model (default: the cores left after --workers, or $OMP_NUM_THREADS)."),
]  # fmt: skip

NOT_REPLAYED = ("config", "out", "exist_ok", "resume")  # a rerun from config.yaml makes a new run of its own


CONFIG_MAX_BYTES = 1_000_000  # option files are a few lines; anything bigger is a wrong path, not a config
CONFIG_MAX_VALUES = 10_000  # values after expanding YAML aliases: a "billion laughs" file expands to 10^9
CONFIG_MAX_DEPTH = 50  # option values are scalars and short lists; deeper is not an option file


def _fail(message: str):
    from distilkit.utils.boundary import say

    say(f"error: {message}")
    raise typer.Exit(1)


def _config_loader():
    """yaml's SafeLoader with bounds checked while composing, before anything is built or walked: the number of
    values once aliases are expanded (nine aliases of nine aliases ... are 10^9 values to whatever walks them)
    and the nesting depth (20,000 nested lists exhaust the recursion limit); and no key given twice."""
    import yaml

    from distilkit.errors import DistilkitError

    class BoundedLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            self.depth += 1
            try:
                if self.depth > CONFIG_MAX_DEPTH:
                    raise DistilkitError(f"nested more than {CONFIG_MAX_DEPTH} levels deep")
                node = super().compose_node(parent, index)
            finally:
                self.depth -= 1
            weights = self.__dict__.setdefault("weights", {})  # id(node) -> its values, aliases expanded
            if id(node) not in weights:  # an alias returns its anchor's node, already weighed
                children = node.value if isinstance(node, yaml.SequenceNode) else ()
                if isinstance(node, yaml.MappingNode):
                    children = [n for pair in node.value for n in pair]
                weights[id(node)] = 1 + sum(weights[id(c)] for c in children)
            if weights[id(node)] > CONFIG_MAX_VALUES:
                raise DistilkitError(f"expands to more than {CONFIG_MAX_VALUES:,} values (YAML aliases?)")
            return node

        def construct_mapping(self, node, deep=False):
            # yaml keeps the last of two equal keys without a word: which one was meant is the user's to say
            seen = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in seen:
                        raise DistilkitError(f"key '{key.value}' given twice")
                    seen.add(key.value)
            return super().construct_mapping(node, deep)

    return BoundedLoader


def read_config(path: Path) -> dict:
    """A YAML (or JSON, which YAML reads) mapping of option names to values. What is not a small regular file
    is refused before it is opened for reading (a directory, a FIFO that never ends, /dev/zero)."""
    import stat

    import yaml

    from distilkit.errors import DistilkitError

    try:
        st = Path(path).stat()
    except FileNotFoundError:
        _fail(f"--config {path}: file not found")
    except OSError as e:
        _fail(f"--config {path}: cannot read it ({e.strerror})")
    if stat.S_ISDIR(st.st_mode):
        _fail(f"--config {path}: is a folder; give the YAML file in it (a run's config.yaml)")
    if not stat.S_ISREG(st.st_mode):
        _fail(f"--config {path}: not a regular file (a pipe or device?); give a YAML file")
    if st.st_size > CONFIG_MAX_BYTES:
        _fail(f"--config {path}: {st.st_size:,} bytes, more than an option file's {CONFIG_MAX_BYTES:,}; wrong file?")
    try:
        with open(path, "rb") as f:
            text = f.read(CONFIG_MAX_BYTES + 1).decode()  # bounded even if it grew since stat
        data = yaml.load(text, Loader=_config_loader())  # noqa: S506 - a SafeLoader subclass
    except DistilkitError as e:
        _fail(f"--config {path}: {e}")
    except RecursionError:
        _fail(f"--config {path}: nested too deeply")
    except OSError as e:
        _fail(f"--config {path}: cannot read it ({e.strerror})")
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        _fail(f"--config {path}: not valid YAML or JSON ({e.__class__.__name__})")
    if data is None:
        return {}
    if not isinstance(data, dict):
        _fail(f"--config {path}: expected a mapping of option names to values")
    return data


def load_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """--config FILE: its values become the command's defaults, so flags on the command line override them;
    an unknown key or a value of the wrong type is one line naming the key. This runs in a Click callback,
    before the command's wrapper: anything unexpected goes through the same boundary."""
    from distilkit.utils.boundary import fail, is_cli_flow

    try:
        return _load_config(ctx, value)
    except Exception as e:
        if is_cli_flow(e):
            raise
        raise typer.Exit(fail(e)) from None


def _load_config(ctx: typer.Context, value: Path | None) -> Path | None:
    from distilkit.utils.files import command_path

    command_path.set(ctx.command_path)  # called for every run (value or not): what config.yaml will name
    if value is None:
        return None
    options = {p.name: p for p in ctx.command.params if p.name not in ("config", "help")}
    defaults = {}
    for key, raw in read_config(value).items():
        name = str(key).replace("-", "_")
        if name not in options:
            from distilkit.schema import printable

            _fail(f"--config {value}: unknown option '{printable(str(key))}' for `{ctx.command_path}`")
        if name in defaults:  # val_every and val-every: one option given twice
            _fail(f"--config {value}: option '{key}' given twice (as '-' and '_' spellings)")
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
    """Every command's wrapper: any exception becomes one line on stderr and a non-zero exit (no traceback;
    utils.boundary classifies it: 1 for errors, 130 for Ctrl-C, 143 for SIGTERM, an unexpected one with a crash
    log); commands with options also get --config, and the values each run used are handed to the run
    directory (config.yaml); and --threads, set before the command runs (utils.device.set_threads)."""
    import inspect

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from distilkit.utils.boundary import fail, flush_stdout, is_cli_flow
        from distilkit.utils.files import (
            command_path,
            discard_unused_run_dirs,
            invocation,
            made_run_dirs,
            start_guard,
            write_guard,
        )

        guard = start_guard(kwargs)  # the never-overwrite check of every file this command writes
        kwargs.pop("config", None)
        threads = kwargs.pop("threads", None)
        token = invocation.set((command_path.get(), replayable({**kwargs, "threads": threads})))
        made = made_run_dirs.set([])
        try:
            if injected:
                from distilkit.utils.device import set_threads

                set_threads(threads, reserved=kwargs.get("workers") or 0)
            from distilkit.schema import check_options

            check_options({**kwargs, "threads": threads})  # every numeric option, one schema (schema.py)
            result = fn(*args, **kwargs)
            flush_stdout()  # a full disk or closed pipe behind stdout is reported here, not at interpreter exit
            return result
        except (Exception, KeyboardInterrupt) as e:  # the one boundary: every error is one line (utils.boundary)
            if is_cli_flow(e):
                raise
            discard_unused_run_dirs()
            raise typer.Exit(fail(e, kwargs)) from None
        finally:
            made_run_dirs.reset(made)
            invocation.reset(token)
            write_guard.reset(guard)

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
