"""Declarative schemas of every record distilkit reads: training settings, each method's arguments, checkpoint and
export metadata, the resume state, the scan cache and compare's arm.json.

One pydantic model per record: strict types (no bool for a number, no text for a number), finite numbers, bounds
on both sides, enumerations, unknown keys refused by name. The CLI, --config, args.json, the Python API and every
file read go through `validate`, which turns pydantic's report into one DistilkitError line naming the flag, so
a bad value is caught where it enters, not as a wrong result later. No torch here: `--help` stays fast.

Adding a method: a `Record` subclass of its arguments (from `SupervisedArgs` or `TeacherStudentArgs` when it
builds on them) and one `METHOD_ARGS` entry; `TrainConfig` then validates it everywhere.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from distilkit.errors import DistilkitError

# ---- building blocks -------------------------------------------------------------------------------------------
MAX_ITERS = 10**7
# torch.onnx's highest export opset (torch.onnx._constants.ONNX_MAX_OPSET of the installed torch, which
# tests/test_schema.py compares it with): written here, since this module must not import torch
ONNX_MAX_OPSET = 23


def _printable(text: str) -> str:
    """A name is printed on the terminal and in one-line errors: escape sequences, newlines and other control or
    format characters (str.isprintable; a plain space is fine) would repaint the screen or forge an error line."""
    if not text.isprintable():
        raise ValueError("control characters")
    return text


PRINTABLE = AfterValidator(_printable)
Iters = Annotated[int, Field(ge=1, le=MAX_ITERS)]
Count = Annotated[int, Field(ge=1, le=10**9)]  # image counts and limits
Weight = Annotated[float, Field(ge=0, le=1000)]  # a loss weight; 0 switches the term off
Multiplier = Annotated[float, Field(gt=0, le=1000)]
Temperature = Annotated[float, Field(gt=0, le=100)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Ratio = Annotated[float, Field(gt=0, le=1)]
Byte = Annotated[int, Field(ge=0, le=255)]
Name = Annotated[str, Field(min_length=1, max_length=200), PRINTABLE]
# a registry name (data set, model, method), as files record it: no path, no shell text
Ident = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")]
Opset = Annotated[int, Field(ge=11, le=ONNX_MAX_OPSET)]  # torch.onnx exports opsets 11 and up
PathText = Annotated[str, Field(min_length=1, max_length=4096)]
Side = Annotated[int, Field(ge=1, le=16384)]
Jitter = Annotated[float, Field(ge=0, lt=1)]
Hue = Annotated[float, Field(ge=0, le=0.5)]

Batch = Annotated[int, Field(ge=1, le=65536)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # numpy's seeding takes 32 bits
Workers = Annotated[int, Field(ge=0, le=256)]
Warmup = Annotated[int, Field(ge=0, le=MAX_ITERS)]  # the engine caps it at half of each stage (optim.py)
ImgSz = Annotated[list[Side], Field(min_length=2, max_length=2)]
Lr = Annotated[float, Field(gt=0, le=10)]
WeightDecay = Annotated[float, Field(ge=0, le=10)]
GradClip = Annotated[float, Field(gt=0, le=10**6)]
ValEvery = Annotated[int, Field(ge=1, le=10**9)]

FLAGS = {"lam": "--lambda", "model": "--model"}  # fields whose flag is not --field-name


class Record(BaseModel):
    """Strict, closed, finite: what every schema here is."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class Aug(Record):
    """AugmentConfig's fields (method_args['aug'])."""

    scale: Annotated[list[Annotated[float, Field(gt=0, le=16)]], Field(min_length=2, max_length=2)] = [0.5, 2.0]
    flip: bool = True
    jitter: Jitter = 0.2
    hue: Hue = 0.0
    grey: Fraction = 0.0


class ModelArgs(Record):
    """Architecture arguments a run or a checkpoint may pass to a model builder (never a path or a hub name)."""

    width: Annotated[float, Field(gt=0, le=4)] = 1.0


# ---- method arguments ------------------------------------------------------------------------------------------
class SupervisedArgs(Record):
    aug: Aug | None = None
    style: Literal["fda"] | None = None
    style_target: Name | None = None
    weights: PathText | None = None  # a checkpoint to fine-tune
    fda_beta: Fraction = 0.01


class TeacherStudentArgs(SupervisedArgs):
    teacher: PathText | None = None
    ce_weight: Weight = 1.0


class KDArgs(TeacherStudentArgs):
    # T = 1, CIRKD's pixel KD temperature, not the T = 4 of classification KD (mdistiller): on CamVid, a pretrained
    # DeepLabV3+-Lite0 under an FPN-Lite2 teacher scored 5 points lower at T = 4 than alone and level at T = 1,
    # and T = 1 was at least as good as T = 4 on all six paired seeds of two students (docs/benchmarks.md).
    temperature: Temperature = 1.0
    kd_weight: Weight = 1.0
    kd_valid_only: bool = True


class SDDArgs(TeacherStudentArgs):
    scales: Annotated[list[Annotated[int, Field(ge=1, le=64)]], Field(min_length=1, max_length=16)] = [1, 2, 4]
    beta: Weight = 2.0
    temperature: Temperature = 4.0
    sdd_temperature: Temperature | None = None
    kd_weight: Weight = 1.0
    sdd_weight: Weight = 1.0


class CWDArgs(TeacherStudentArgs):
    tau: Temperature = 1.0
    cwd_weight: Weight = 5.0
    feature_weight: Weight = 0.0
    kd_weight: Weight = 0.0
    temperature: Temperature = 4.0


class HDLArgs(TeacherStudentArgs):
    ce_weight: Weight = 0.5
    cs_weight: Weight = 0.3
    dice_weight: Weight = 0.2
    kd_weight: Weight = 0.0
    temperature: Temperature = 4.0
    tau: Temperature = 1.0
    freeze_epochs: Annotated[float, Field(ge=0, le=10**6)] = 0.0


SAKD_BASES = ("kd", "sdd", "hdl", "cwd")


class SAKDArgs(Record):
    """SAKD's own arguments; the rest of its method_args are its base method's, checked by that schema."""

    base: Literal["kd", "sdd", "hdl", "cwd"] = "kd"
    selection: Literal["dpp", "random"] = "dpp"
    ratio: Ratio = 0.5
    epochs: Annotated[int, Field(ge=1, le=10**6)] = 10
    select_every: Annotated[int, Field(ge=1, le=10**6)] = 1
    theta: Annotated[float, Field(gt=0, le=100)] = 0.9
    grid: Annotated[int, Field(ge=1, le=64)] = 4
    eta: Fraction = 0.5
    lam: Fraction = 0.1
    gamma: Fraction = 0.5
    difficulty_scale: Annotated[float, Field(gt=0, le=4)] = 0.5
    difficulty_batch: Annotated[int, Field(ge=1, le=65536)] = 32
    temperature: Temperature | None = None


class DUDAArgs(Record):
    """DUDA's arguments and their defaults (the paper's, DAFormer's and MIC's where they set one)."""

    aug: Aug | None = None
    tgt: Name = "synth-city"
    teacher_model: Name = "segformer-b5"
    teacher: PathText | None = None  # a source-trained checkpoint warm-starting LT and LS
    # a source-trained checkpoint warm-starting SS (its architecture replaces cfg.model)
    student: PathText | None = None
    teacher_lr_mult: Multiplier | None = None  # LS's lr multiplier; None: 0.1 when warm-started (fine-tuning), else 1
    stage1_iters: Iters = 40000
    stage3_iters: Iters = 40000
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.999
    pseudo_threshold: Fraction = 0.968
    pseudo_keep: Ratio = 1.0  # < 1: class-balanced pseudo-labels (an extension, not in the paper)
    kd_weight: Weight = 1.0
    temperature: Temperature = 2.0
    mix: bool = True
    rcs: bool | None = None  # None: on for gta / synthia / synth-gta sources
    rcs_temperature: Temperature = 0.01
    # DAFormer's, for a 1914 x 1052 GTA frame: scaled by each image's area
    rcs_min_pixels: Annotated[float, Field(ge=0, le=10**8)] = 3000
    rcs_min_crop_ratio: Fraction = 0.5  # re-draw a crop (up to 10 times) until it holds min_pixels x this (512 x 512)
    strong_aug: bool = False  # colour jitter and blur on the mixed image
    mic: bool = False
    mic_block: Annotated[int, Field(ge=1, le=4096)] = 64
    mic_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.7
    mic_aug: bool = True  # MIC's mask_mode='separatetrgaug': the target is strongly augmented before masking
    # "all": DAFormer's mmseg CE, ignored pixels count as zeros in the mean
    ce_average: Literal["valid", "all"] = "valid"
    fd_weight: Weight = 0.0  # DAFormer's ImageNet feature distance (lambda_FD = 0.005 there) on LS; 0 disables
    fd_student: bool = False  # also on SS
    # class names the distance is taken on; None: the data set's thing classes
    fd_classes: Annotated[list[Name], Field(max_length=255)] | None = None
    fd_min_ratio: Fraction = 0.75  # a feature pixel counts when this fraction of its label patch is one such class
    style: Literal["fda"] | None = None  # "fda": source images restyled by a random target image
    fda_beta: Fraction = 0.01
    inconsistency_images: Count | None = None  # None: the whole target training set
    tgt_val_split: Name | None = None  # None: "val" if the target has one, else "train"
    src_root: PathText | None = None
    tgt_root: PathText | None = None
    preset: Literal["paper", "cpu"] | None = None


_SHARED_ARGS = (SupervisedArgs, TeacherStudentArgs, Record, BaseModel, object)  # their readers default them
METHOD_ARGS: dict[str, type[Record]] = {
    "supervised": SupervisedArgs,
    "kd": KDArgs,
    "sdd": SDDArgs,
    "cwd": CWDArgs,
    "hdl": HDLArgs,
    "sakd": SAKDArgs,
    "duda": DUDAArgs,
    "target-kd": DUDAArgs,
}


def defaults(method: str) -> dict[str, Any]:
    """The defaults of the arguments `method` itself declares (not those it inherits, which the method it builds
    on fills): the one place they are written, read by the method when it starts and by its CLI options."""
    schema = METHOD_ARGS[method]
    own = {k for cls in schema.__mro__ if cls not in _SHARED_ARGS for k in getattr(cls, "__annotations__", {})}
    return {k: f.get_default(call_default_factory=True) for k, f in schema.model_fields.items() if k in own}


def method_keys(method: str) -> set[str]:
    """Every key `method` reads from method_args (SAKD: its own and any base's)."""
    own = set(METHOD_ARGS[method].model_fields)
    return own | {k for b in SAKD_BASES for k in METHOD_ARGS[b].model_fields} if method == "sakd" else own


def check_method_args(method: str, args: dict) -> None:
    """Refuse unknown keys (naming the nearest valid one) and out-of-range values of `method`'s arguments."""
    if method not in METHOD_ARGS:
        raise DistilkitError(f"unknown method '{method}'; known: {', '.join(METHOD_ARGS)}")
    if not isinstance(args, dict):
        raise DistilkitError(f"method_args of {method} must be a JSON object, not {type(args).__name__}")
    schema = METHOD_ARGS[method]
    if method != "sakd":
        validate(schema, args, f"argument for {method}", set(schema.model_fields))
        return
    own = {k: v for k, v in args.items() if k in schema.model_fields}
    validate(schema, own, "argument for sakd", set(schema.model_fields))
    base = METHOD_ARGS[own.get("base", "kd")]  # a valid name: checked by the line above
    rest = {k: v for k, v in args.items() if k not in schema.model_fields or k == "temperature"}
    validate(
        base, rest, f"argument for sakd over {own.get('base', 'kd')}", set(schema.model_fields) | set(base.model_fields)
    )


# ---- training settings -----------------------------------------------------------------------------------------
class TrainSettings(Record):
    """TrainConfig's fields (engine/config.py), as args.json and --config hold them."""

    command: Name
    method: Name  # one of METHOD_ARGS: check_method_args names the known ones
    data: Name
    val_data: Name | None
    val_split: Name
    data_root: PathText | None
    model: Name
    model_args: ModelArgs
    pretrained: PathText | None
    imgsz: ImgSz | None
    batch: Batch
    iters: Iters
    optimizer: Literal["adamw", "adam", "sgd"]
    lr: Lr
    head_lr_mult: Multiplier
    weight_decay: WeightDecay
    momentum: Annotated[float, Field(ge=0, le=1)]
    schedule: Literal["poly", "cosine", "step", "constant"]
    power: Annotated[float, Field(gt=0, le=100)]
    warmup: Warmup
    grad_clip: GradClip | None
    amp: bool
    val_every: ValEvery
    val_limit: Count | None
    train_limit: Count | None
    log_every: Annotated[int, Field(ge=1, le=MAX_ITERS)]
    eval_mode: Literal["whole", "slide"]
    seed: Seed
    workers: Workers
    skip_bad: bool
    device: Name
    method_args: dict[str, Any]


def check_train_settings(values: dict) -> None:
    """Every TrainConfig field (types, two-sided ranges, enumerations), then the method's arguments, then the
    rules across fields."""
    validate(TrainSettings, values, "training setting", set(TrainSettings.model_fields))
    check_method_args(values["method"], values["method_args"])
    args = values["method_args"]
    if values["method"] in ("duda", "target-kd") and "stage1_iters" in args and "stage3_iters" in args:
        n1, n3 = args["stage1_iters"], args["stage3_iters"]
        if n1 + n3 != values["iters"]:
            raise DistilkitError(f"--iters {values['iters']}: must equal --stage1-iters {n1} + --stage3-iters {n3}")


# ---- checkpoint and export metadata ----------------------------------------------------------------------------
FORMAT_VERSION = 1


class Arch(BaseModel):
    """The model a checkpoint rebuilds: a registered name, its head and builder arguments (checked against the
    builder's signature by engine/checkpoint.py; ModelArgs keeps paths and hub names out)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    name: Ident
    num_classes: Annotated[int, Field(ge=1, le=65535)] | None = None
    width: Annotated[float, Field(gt=0, le=4)] | None = None


class EncoderInit(Record):
    """Where the encoder's initial weights came from (models/pretrained.py writes it): a label shown and compared
    ("imagenet"), never a path that is opened."""

    weights: Annotated[str, Field(min_length=1, max_length=4096), PRINTABLE]  # "imagenet" or the file it loaded
    source: Annotated[str, Field(max_length=300), PRINTABLE] | None = None
    file: Annotated[str, Field(max_length=300), PRINTABLE] | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class Metrics(Record):
    """The scores a checkpoint was saved with (engine/trainer.py): fractions and the step, finite."""

    miou: Fraction | None = None
    pixel_acc: Fraction | None = None
    step: Annotated[int, Field(ge=0, le=MAX_ITERS)] | None = None


class OnnxInfo(Record):
    """How an export was traced (engine/exporter.export_onnx)."""

    opset: Opset
    dynamic: bool
    input_shape: Annotated[list[Side], Field(min_length=4, max_length=4)]


class Calibration(Record):
    """What an INT8 export was calibrated on (engine/exporter.export_and_verify)."""

    data: Ident
    split: Name
    images: Annotated[int, Field(ge=1, le=100_000)]
    method: Literal["minmax", "entropy", "percentile"]
    seed: Seed
    keep_float: Annotated[list[Annotated[str, Field(min_length=1, max_length=4096), PRINTABLE]], Field(max_length=1000)]


ClassId = Annotated[int, Field(ge=0, le=65535)]


class Meta(BaseModel):
    """A checkpoint's or an export's `distilkit-model` metadata: every key distilkit writes (engine/checkpoint.
    model_meta, the trainer's val_data and train_data, the exporter's onnx, precision and calibration, OpenVINO's
    format) and no other; a later format is refused by its format_version first."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    format: Literal["distilkit-model", "onnx", "openvino"] | None = None  # a checkpoint's, or an export's
    format_version: Annotated[int, Field(ge=0)] | None = None
    distilkit_version: Annotated[str, Field(max_length=100), PRINTABLE] | None = None
    arch: Arch
    encoder_init: EncoderInit | None = None
    num_classes: Annotated[int, Field(ge=1, le=65535)]
    class_names: list[Name]
    palette: list[Annotated[list[Byte], Field(min_length=3, max_length=3)]]
    ignore_index: ClassId  # a label value that is not a class id (checked below)
    eval_classes: Annotated[list[ClassId], Field(min_length=1)] | None = None  # None: every class
    imgsz: Annotated[list[Side], Field(min_length=2, max_length=2)]
    # normalisation of [0, 1] pixels: a mean outside [-10, 10] or a std outside [1e-4, 100] is a broken file
    mean: Annotated[list[Annotated[float, Field(ge=-10, le=10)]], Field(min_length=3, max_length=3)]
    std: Annotated[list[Annotated[float, Field(ge=1e-4, le=100)]], Field(min_length=3, max_length=3)]
    dataset: Ident
    method: Ident | None = None
    metrics: Metrics = Metrics()
    val_data: Ident | None = None
    train_data: Ident | None = None
    onnx: OnnxInfo | None = None
    precision: Literal["fp32", "fp16", "int8"] | None = None
    calibration: Calibration | None = None


def check_meta(meta: Any) -> Meta:
    """The metadata's fields, then the rules across them: one line naming the field (raised as ValueError, which
    the caller prefixes with the file)."""
    if not isinstance(meta, dict):
        raise ValueError("not a JSON object")
    version = meta.get("format_version", 0)
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ValueError(f"written by a newer distilkit ({meta.get('distilkit_version')}); upgrade")
    try:
        m = Meta.model_validate(meta)
    except ValidationError as e:
        err = e.errors()[0]
        top, inner = err["loc"][0], ".".join(map(str, err["loc"][1:]))
        if err["type"] == "extra_forbidden":
            top, inner = printable(str(top)), printable(inner)
            raise ValueError(f"'{top}' may not hold '{inner}'" if inner else f"unknown key '{top}'") from None
        where = f"'{top}'" + (f" (at {inner})" if inner else "")
        msg = err["msg"][:1].lower() + err["msg"][1:]  # pydantic's own words: "string should match pattern ..."
        raise ValueError(f"{where}: {msg}, got {_show(err.get('input'))}") from None
    n = m.num_classes
    if m.arch.num_classes is not None and m.arch.num_classes != n:
        raise ValueError(f"'num_classes' {n} disagrees with the model head's {m.arch.num_classes}")
    if len(m.class_names) != n:
        raise ValueError(f"'class_names' must be a list of {n} names, not {len(m.class_names)}")
    twice = sorted({c for c in m.class_names if m.class_names.count(c) > 1})
    if twice:
        raise ValueError(f"'class_names' names {', '.join(map(repr, twice[:5]))} twice; each class needs its own name")
    if len(m.palette) != n:
        raise ValueError(f"'palette' must be {n} [r, g, b] colours of 0..255")
    if 0 <= m.ignore_index < n:
        raise ValueError(f"'ignore_index' must be an integer that is not a class id, not {m.ignore_index}")
    if m.eval_classes is not None and not all(0 <= c < n for c in m.eval_classes):
        raise ValueError(f"'eval_classes' must be null or class ids below {n}")
    if m.eval_classes is not None and len(set(m.eval_classes)) != len(m.eval_classes):
        raise ValueError("'eval_classes' names a class id twice")
    return m


# ---- files distilkit writes and reads back ---------------------------------------------------------------------
class ResumeState(BaseModel):
    """weights/last.state.pt's top level (engine/trainer.py writes it); tensors and containers beneath, which the
    networks, optimizer and scheduler check as they load them."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)
    step: Annotated[int, Field(ge=0, le=MAX_ITERS)]
    best: Annotated[float, Field(ge=-1, le=1)]
    networks: dict[str, dict[str, Any]]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    rng: dict[Literal["torch", "cuda"], Any]
    method: dict[str, Any]
    history: list[dict[str, Any]]
    last_eval: dict[str, Any] | None


class ScanEntry(Record):
    """One file's entry in the pre-flight scan cache (data/scan.py): its (size, mtime) signature and the error."""

    sig: Annotated[list[int], Field(min_length=2, max_length=4)]
    error: Annotated[str, Field(max_length=10000)] | None


SCAN_CACHE = TypeAdapter(dict[str, ScanEntry])


class ArmResult(Record):
    """compare's arm.json (engine/compare.run_arm writes it): those keys and no other."""

    miou: Annotated[float, Field(ge=0, le=100)]
    train_s: Annotated[float, Field(ge=0)]
    wall_s: Annotated[float, Field(ge=0)] | None = None
    iters: Annotated[int, Field(ge=1, le=MAX_ITERS)]
    paired_init: bool | None = None
    per_class: dict[Name, Annotated[float, Field(ge=0, le=100)] | None]


# ---- command options -------------------------------------------------------------------------------------------
class CommandOptions(BaseModel):
    """The numeric options of every command, one definition per name (the same types as TrainSettings and the
    method schemas use), checked by the CLI wrapper before a command starts: also those of commands that build
    no TrainConfig (evaluate, predict, fps, export-onnx, compare, demo). Other options (names, paths, switches)
    pass through here and are checked where they are resolved."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, frozen=True)
    batch: Batch | None = None
    imgsz: ImgSz | None = None
    iters: Iters | None = None  # training iterations, or fps's timed ones
    warmup: Warmup | None = None  # warm-up iterations, or fps's untimed ones
    workers: Workers | None = None
    threads: Annotated[int, Field(ge=1, le=1024)] | None = None  # utils/limits.py bounds it by the machine too
    seed: Seed | None = None
    seeds: Annotated[list[Seed], Field(min_length=1, max_length=100)] | None = None
    limit: Count | None = None
    val_limit: Count | None = None
    train_limit: Count | None = None
    val_every: ValEvery | None = None
    stage1_iters: Iters | None = None
    stage3_iters: Iters | None = None
    inconsistency_images: Count | None = None
    calib_images: Annotated[int, Field(ge=1, le=100_000)] | None = None
    opset: Opset | None = None
    min_agreement: Fraction | None = None
    alpha: Fraction | None = None  # overlay opacity
    lr: Lr | None = None
    head_lr_mult: Multiplier | None = None
    weight_decay: WeightDecay | None = None
    grad_clip: GradClip | None = None
    jitter: Jitter | None = None
    hue: Hue | None = None
    grey: Fraction | None = None


def check_options(options: dict) -> None:
    """A command's option values (as parsed), before it starts: one line naming the first bad one. Tuples are
    compared as lists (imgsz), unset options are skipped."""
    given = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in options.items()
        if k in CommandOptions.model_fields and v is not None
    }
    validate(CommandOptions, given, "option", set(CommandOptions.model_fields))


# ---- one line from pydantic's report ---------------------------------------------------------------------------
def flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(_show(v) for v in value)
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return repr(value)
    text = str(value)
    if not text.isprintable() or not text.strip():
        text = repr(text)  # a newline or an empty string, shown so the line stays one line and says it
    return text if len(text) <= 60 else text[:57] + "..."


def _bounds(metadata: list) -> str:
    parts = []
    for m in metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            v = getattr(m, attr, None)
            if isinstance(m, at.Gt | at.Ge | at.Lt | at.Le) and v is not None:
                parts.append(f"{sign} {v:g}" if isinstance(v, float) else f"{sign} {v}")
    return " and ".join(parts)


def expected(annotation: Any, metadata: list | None = None) -> str:
    """What a field takes, in words: 'a number > 0 and <= 100', 'one of adamw, adam, sgd', ..."""
    metadata = list(metadata or [])
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        inner, *extra = typing.get_args(annotation)
        flat = [m for e in extra for m in (e.metadata if hasattr(e, "metadata") else [e])]
        return expected(inner, metadata + flat)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(expected(a, metadata) for a in options)
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    if origin is list:
        (item,) = typing.get_args(annotation)
        sizes = [m for m in metadata if isinstance(m, at.MinLen | at.MaxLen)]
        lo = next((m.min_length for m in sizes if isinstance(m, at.MinLen)), None)
        hi = next((m.max_length for m in sizes if isinstance(m, at.MaxLen)), None)
        count = f"{lo}" if lo == hi and lo else f"{lo or 0} to {hi}" if hi else "any number of"
        return f"{count} values, each {expected(item)}"
    if annotation is str and any(getattr(m, "pattern", None) for m in metadata):
        return "a name of letters, digits and _ . + - (up to 100)"
    if annotation is str and PRINTABLE in metadata:
        return "printable text (no control characters)"
    bounds = _bounds(metadata)
    kind = {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(annotation)
    if kind is None:
        return "an object" if isinstance(annotation, type) and issubclass(annotation, BaseModel) else str(annotation)
    return f"{kind} {bounds}".strip()


def printable(text: str) -> str:
    """A key or name from a file as one printable line: control characters (a newline) escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def nearest(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(sorted(known))}"


def validate(schema: type[BaseModel], values: dict, what: str, known: set[str]) -> BaseModel:
    """`schema` over `values`, or one DistilkitError line: an unknown key by name with the nearest valid one,
    else the first bad value as `--flag value: expected ...`."""
    try:
        return schema.model_validate(values)
    except ValidationError as e:
        errors = e.errors()
    extra = next((err for err in errors if err["type"] == "extra_forbidden"), None)
    if extra is not None:
        key = printable(".".join(map(str, extra["loc"])))
        sub = _sub_schema(schema, str(extra["loc"][0])) if len(extra["loc"]) > 1 else None
        keys = set(sub.model_fields) if sub is not None else known
        kind, _, owner = what.partition(" for ")
        owner = f" for {owner}" if owner else ""
        raise DistilkitError(f"unknown {kind} '{key}'{owner}{nearest(str(extra['loc'][-1]), keys)}")
    err = errors[0]
    loc = list(err["loc"])
    while len(loc) > 1 and isinstance(loc[1], str) and _sub_schema(schema, str(loc[0])) is not None:
        schema, values = _sub_schema(schema, str(loc[0])), values.get(str(loc[0])) if isinstance(values, dict) else {}
        loc = loc[1:]  # a nested record (model_args, aug): name its own field, --width rather than --model-args
    name = str(loc[0])
    value = values.get(name, err.get("input")) if isinstance(values, dict) else err.get("input")
    if err["type"] == "missing":
        raise DistilkitError(f"{flag(name)} is missing: expected {expected_of(schema, name)}")
    shown = _show(value)
    if err["type"] == "literal_error":
        raise DistilkitError(f"{flag(name)} {shown}: unknown {name.replace('_', ' ')}; expected "
                             f"{expected_of(schema, name)}")  # fmt: skip
    raise DistilkitError(f"{flag(name)} {shown}: expected {expected_of(schema, name)}")


def _sub_schema(schema: type[BaseModel], name: str) -> type[BaseModel] | None:
    field = schema.model_fields.get(name)
    for arg in (field.annotation, *typing.get_args(field.annotation)) if field else ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def expected_of(schema: type[BaseModel], name: str) -> str:
    field = schema.model_fields[name]
    return expected(field.annotation, field.metadata)
