"""`distilkit distill {duda,sakd,hdl,sdd,cwd}`: the distillation methods, one subcommand each."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from distilkit.cli.options import (
    Amp,
    DataRoot,
    Device,
    ExistOk,
    Grey,
    Hue,
    ImgSz,
    Jitter,
    Name,
    Out,
    Pretrained,
    Seed,
    SkipBad,
    TrainLimit,
    ValLimit,
    Workers,
    augment,
    user_errors,
)

app = typer.Typer(help="Distil a teacher into a student (duda, sakd, hdl, sdd, cwd).", no_args_is_help=True)

DUDA_PRESETS = {
    # the paper: 40k + 40k iterations, 512x512 crops, batch 2, MiT-B5 -> MiT-B0, AdamW 6e-5 (head x10)
    "paper": dict(teacher_model="segformer-b5", student_model="segformer-b0", stage1=40000, stage3=40000,
                  imgsz=(512, 512), batch=2, lr=6e-5, head_lr_mult=10.0, warmup=1500, val_every=4000,
                  inconsistency_images=None, val_limit=None),
    # minutes on a 2-core CPU: small sizes of the same families, the source's default size, a higher lr
    # (no pretrained encoders offline), subsets for the inconsistency pass and the periodic evaluations
    "cpu": dict(teacher_model="segformer-b1", student_model="segformer-b0", stage1=150, stage3=150, imgsz=None,
                batch=2, lr=6e-4, head_lr_mult=1.0, warmup=30, val_every=None, inconsistency_images=200,
                val_limit=100),
}  # fmt: skip


def _opt(help_: str, *flags: str):
    return typer.Option(*flags, help=help_)


def _preset(help_: str, key: str, flag: str):
    """An option whose default comes from --preset: the help says each preset's value."""

    def show(v) -> str:
        return "all" if v is None else "x".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}" if isinstance(
            v, float) else str(v)  # fmt: skip

    values = ", ".join(f"{name} {show(p[key])}" for name, p in DUDA_PRESETS.items())
    return typer.Option(flag, help=f"{help_} (by --preset: {values})")


@app.command("duda")
@user_errors
def duda(
    src: Annotated[str, _opt("Labelled source data set.", "--src")] = "synth-gta",
    tgt: Annotated[str, _opt("Unlabelled target data set (its labels only measure).", "--tgt")] = "synth-city",
    src_root: Annotated[Path | None, _opt("Source root (default: --data-root).", "--src-root")] = None,
    tgt_root: Annotated[Path | None, _opt("Target root (default: --data-root).", "--tgt-root")] = None,
    preset: Annotated[str | None, _opt("paper or cpu (default: paper on CUDA, cpu otherwise).", "--preset")] = None,
    teacher: Annotated[Path | None, _opt("Source-trained checkpoint warm-starting LT and LS.", "--teacher")] = None,
    student: Annotated[Path | None, _opt("Source-trained checkpoint warm-starting SS.", "--student")] = None,
    teacher_model: Annotated[str | None, _preset("Large model (LT, LS).", "teacher_model", "--teacher-model")] = None,
    student_model: Annotated[
        str | None, _preset("Small model (SS), the one deployed.", "student_model", "--student-model")
    ] = None,
    pretrained: Pretrained = None,
    stage1_iters: Annotated[int | None, _preset("Pre-adaptation iterations.", "stage1", "--stage1-iters")] = None,
    stage3_iters: Annotated[int | None, _preset("Fine-tuning iterations.", "stage3", "--stage3-iters")] = None,
    lr: Annotated[float | None, _preset("Base learning rate (AdamW).", "lr", "--lr")] = None,
    head_lr_mult: Annotated[
        float | None, _preset("Decode-head lr multiplier.", "head_lr_mult", "--head-lr-mult")
    ] = None,
    teacher_lr_mult: Annotated[
        float | None,
        _opt("LS lr multiplier (default: 0.1 with --teacher, i.e. fine-tuning; else 1).", "--teacher-lr-mult"),
    ] = None,
    kd_weight: Annotated[float, _opt("lambda_kd of stage 1.", "--kd-weight")] = 1.0,
    temperature: Annotated[float, _opt("KD temperature T.", "--temperature")] = 2.0,
    ema: Annotated[float, _opt("EMA factor of the teacher.", "--ema")] = 0.999,
    pseudo_threshold: Annotated[float, _opt("Confidence threshold of the weight q.", "--pseudo-threshold")] = 0.968,
    pseudo_keep: Annotated[
        float,
        _opt("Class-balanced pseudo-labels: per class, keep this most confident fraction (1: all).", "--pseudo-keep"),
    ] = 1.0,
    mix: Annotated[bool, _opt("ClassMix source classes onto the target.", "--mix/--no-mix")] = True,
    adapt: Annotated[
        bool,
        _opt(
            "--no-adapt: only distil the --teacher source model into SS on target crops (target KD, no "
            "self-training; DUDA's control, as good on CamVid day -> dusk).",
            "--adapt/--no-adapt",
        ),
    ] = True,
    rcs: Annotated[
        bool | None, _opt("Rare class sampling (default: on for gta/synthia sources).", "--rcs/--no-rcs")
    ] = None,
    strong_aug: Annotated[bool, _opt("Colour jitter and blur on mixed images.", "--strong-aug")] = False,
    rcs_min_pixels: Annotated[
        float, _opt("RCS: images need more pixels of the class than this (per 1914x1052 frame).", "--rcs-min-pixels")
    ] = 3000,
    rcs_min_crop_ratio: Annotated[
        float, _opt("RCS: re-draw crops holding under min-pixels x this (per 512x512 crop).", "--rcs-min-crop-ratio")
    ] = 0.5,
    mic: Annotated[bool, _opt("MIC masked-image consistency (64x64 blocks, ratio 0.7).", "--mic")] = False,
    mic_aug: Annotated[
        bool, _opt("MIC: jitter and blur the target before masking (MIC's separatetrgaug).", "--mic-aug/--no-mic-aug")
    ] = True,
    ce_average: Annotated[
        str, _opt("valid: CE over valid pixels; all: over all pixels, ignored as 0 (DAFormer).", "--ce-average")
    ] = "valid",
    fd_weight: Annotated[
        float, _opt("ImageNet feature distance on LS (DAFormer: 0.005; needs ImageNet encoders).", "--fd-weight")
    ] = 0.0,
    fd_student: Annotated[bool, _opt("Feature distance on SS too.", "--fd-student")] = False,
    fd_classes: Annotated[
        list[str] | None, _opt("Classes FD is taken on (default: the data set's thing classes).", "--fd-classes")
    ] = None,
    style: Annotated[str | None, _opt("fda: render source images in the target's style.", "--style")] = None,
    fda_beta: Annotated[float, _opt("FDA low-frequency band.", "--fda-beta")] = 0.01,
    inconsistency_images: Annotated[
        int | None, _preset("Target images for stage 2.", "inconsistency_images", "--inconsistency-images")
    ] = None,
    val_every: Annotated[
        int | None, _opt("Evaluate and save every N iterations (default: end of each stage).", "--val-every")
    ] = None,
    val_limit: ValLimit = None,
    train_limit: TrainLimit = None,
    resume: Annotated[Path | None, _opt("Continue a run from its last saved state (run dir).", "--resume")] = None,
    jitter: Jitter = 0.2,
    hue: Hue = 0.0,
    grey: Grey = 0.0,
    imgsz: ImgSz = None,
    batch: Annotated[int | None, _preset("Images per step per domain.", "batch", "--batch")] = None,
    amp: Amp = False,
    seed: Seed = 0,
    device: Device = "auto",
    workers: Workers = 2,
    skip_bad: SkipBad = False,
    data_root: DataRoot = None,
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """Distilled unsupervised domain adaptation: labelled source, unlabelled target, a small deployable student."""
    from distilkit.cli.train import resume_alone
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.distributed import is_main
    from distilkit.engine.trainer import run_training
    from distilkit.errors import DistilkitError
    from distilkit.methods.duda import report
    from distilkit.utils.device import select_device

    cfg = None
    if resume is not None:
        resume_alone()
    else:
        preset = preset or ("paper" if select_device(device).type == "cuda" else "cpu")
        if preset not in DUDA_PRESETS:
            raise DistilkitError(f"--preset {preset}: expected {' or '.join(DUDA_PRESETS)}")
        p = DUDA_PRESETS[preset]

        def given(value, default):  # an explicit 0 is checked, not replaced by the preset
            return default if value is None else value

        n1, n3 = given(stage1_iters, p["stage1"]), given(stage3_iters, p["stage3"])
        method_args = dict(
            tgt=tgt,
            teacher=str(teacher) if teacher else None,
            student=str(student) if student else None,
            teacher_model=teacher_model or p["teacher_model"],
            teacher_lr_mult=teacher_lr_mult,
            stage1_iters=n1,
            stage3_iters=n3,
            ema=ema,
            pseudo_threshold=pseudo_threshold,
            pseudo_keep=pseudo_keep,
            kd_weight=kd_weight,
            temperature=temperature,
            mix=mix,
            rcs=rcs,
            strong_aug=strong_aug,
            rcs_min_pixels=rcs_min_pixels,
            rcs_min_crop_ratio=rcs_min_crop_ratio,
            mic=mic,
            mic_aug=mic_aug,
            ce_average=ce_average,
            fd_weight=fd_weight,
            fd_student=fd_student,
            fd_classes=fd_classes,
            style=style,
            fda_beta=fda_beta,
            inconsistency_images=given(inconsistency_images, p["inconsistency_images"]),
            src_root=str(src_root) if src_root else None,
            tgt_root=str(tgt_root) if tgt_root else None,
            preset=preset,
            aug=augment(jitter, hue, grey),
        )
        cfg = TrainConfig(
            command="distill-duda",
            method="duda" if adapt else "target-kd",
            data=src,
            val_data=tgt,
            data_root=str(data_root) if data_root else None,
            model=student_model or p["student_model"],
            imgsz=tuple(imgsz) if imgsz is not None else p["imgsz"],
            batch=given(batch, p["batch"]),
            iters=n1 + n3,
            lr=given(lr, p["lr"]),
            head_lr_mult=given(head_lr_mult, p["head_lr_mult"]),
            pretrained=pretrained,
            warmup=p["warmup"],
            val_every=given(val_every, p["val_every"] or n1),
            val_limit=given(val_limit, p["val_limit"]),
            train_limit=train_limit,
            amp=amp,
            seed=seed,
            workers=workers,
            skip_bad=skip_bad,
            device=device,
            method_args=method_args,
        )
    results, run_dir, method = run_training(cfg, name, out, exist_ok, resume, device, "distill-duda")
    if is_main():  # under torchrun, rank 0 reports
        report(method, results, run_dir)


# Options of the single-data-set distillation commands (sdd, hdl, sakd): one name and meaning each.
Teacher = Annotated[Path | None, _opt("Teacher checkpoint (frozen).", "--teacher")]
Data = Annotated[str, _opt("Labelled training set (list: `distilkit datasets`).", "--data")]
Student = Annotated[str, _opt("Student architecture (list: `distilkit models`).", "--student")]
ValData = Annotated[str | None, _opt("Validation set (default: --data's val split).", "--val-data")]
Iters = Annotated[int, _opt("Training iterations.", "--iters")]
Lr = Annotated[float, _opt("Base learning rate.", "--lr")]
Warmup = Annotated[int, _opt("Linear warm-up iterations.", "--warmup")]
ValEvery = Annotated[int, _opt("Evaluate and save every N iterations.", "--val-every")]
Resume = Annotated[Path | None, _opt("Continue a run from its last saved state (run dir).", "--resume")]
Temperature = Annotated[float, _opt("KD temperature.", "--temperature")]
KdWeight = Annotated[float, _opt("Weight of pixel KD on logits.", "--kd-weight")]


def _distill(method: str, label: str, resume: Path | None, method_args: dict, train: dict, run: dict) -> None:
    """Build the experiment record (unless resuming), train, print and save the final evaluation."""
    from distilkit.cli.train import resume_alone
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.distributed import is_main
    from distilkit.engine.report import report_eval
    from distilkit.engine.trainer import run_training

    cfg = None
    if resume is not None:
        resume_alone()
    else:
        train["imgsz"] = tuple(train["imgsz"]) if train["imgsz"] else None
        train["data_root"] = str(train["data_root"]) if train["data_root"] else None
        teacher = method_args.get("teacher")
        method_args["teacher"] = str(teacher) if teacher else None
        cfg = TrainConfig(command=f"distill-{method}", method=method, method_args=method_args, **train)
    results, run_dir, m = run_training(cfg, resume=resume, command=f"distill-{method}", **run)
    if not is_main():  # under torchrun, rank 0 reports
        return
    val = m.val_dataset()
    report_eval(results, run_dir, f"{m.cfg.model} distilled with {label}, on {val.info.name} ({val.split}), final")


@app.command("sakd")
@user_errors
def sakd(
    teacher: Teacher = None,
    data: Data = "synth-gta",
    student: Student = "segformer-b0",
    pretrained: Pretrained = None,
    base: Annotated[str, _opt("Base distillation loss: kd, sdd, hdl or cwd.", "--base")] = "kd",
    selection: Annotated[
        str, _opt("dpp (the method) or random (its ablation: a uniform subset of the same size).", "--selection")
    ] = "dpp",
    ratio: Annotated[float, _opt("Fraction r of the images selected each epoch.", "--ratio")] = 0.5,
    epochs: Annotated[int, _opt("Epochs (each of round(r N) selected images).", "--epochs")] = 10,
    select_every: Annotated[int, _opt("Difficulty pass every N epochs.", "--select-every")] = 1,
    difficulty_scale: Annotated[
        float, _opt("Size of the difficulty pass's images relative to --imgsz.", "--difficulty-scale")
    ] = 0.5,
    grid: Annotated[int, _opt("Interruption grid g (g x g tiles).", "--grid")] = 4,
    lam: Annotated[float, _opt("Momentum lambda of alpha.", "--lambda")] = 0.1,
    gamma: Annotated[float, _opt("Quality-diversity trade-off gamma.", "--gamma")] = 0.5,
    temperature: Annotated[
        float | None, _opt("KD temperature (default: the base method's; kd 1, sdd 4).", "--temperature")
    ] = None,
    val_data: ValData = None,
    lr: Lr = 6e-4,
    warmup: Warmup = 100,
    val_every: ValEvery = 250,
    val_limit: ValLimit = None,
    train_limit: TrainLimit = None,
    resume: Resume = None,
    jitter: Jitter = 0.2,
    hue: Hue = 0.0,
    grey: Grey = 0.0,
    imgsz: ImgSz = None,
    batch: Annotated[int, _opt("Images per step.", "--batch")] = 8,
    amp: Amp = False,
    seed: Seed = 0,
    device: Device = "auto",
    workers: Workers = 2,
    skip_bad: SkipBad = False,
    data_root: DataRoot = None,
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """Sample-level adaptive KD: per-image distillation strength and DPP selection over a base loss."""
    args = dict(
        aug=augment(jitter, hue, grey),
        teacher=teacher,
        base=base,
        selection=selection,
        ratio=ratio,
        epochs=epochs,
        select_every=select_every,
        difficulty_scale=difficulty_scale,
        grid=grid,
        lam=lam,
        gamma=gamma,
        **({} if temperature is None else {"temperature": temperature}),
    )
    train = dict(
        data=data,
        val_data=val_data,
        model=student,
        pretrained=pretrained,
        iters=1,
        lr=lr,
        warmup=warmup,
        val_every=val_every,
        val_limit=val_limit,
        train_limit=train_limit,
        imgsz=imgsz,
        batch=batch,
        amp=amp,
        seed=seed,
        device=device,
        workers=workers,
        skip_bad=skip_bad,
        data_root=data_root,
    )
    _distill(
        "sakd", f"SAKD over {base}", resume, args, train, dict(name=name, out=out, exist_ok=exist_ok, device=device)
    )


@app.command("hdl")
@user_errors
def hdl(
    teacher: Teacher = None,
    data: Data = "synth-gta",
    student: Student = "fastlitessnet",
    pretrained: Pretrained = None,
    width: Annotated[float, _opt("Width multiplier of fastlitessnet.", "--width")] = 1.0,
    ce_weight: Annotated[float, _opt("Weight of CE.", "--ce-weight")] = 0.5,
    cs_weight: Annotated[float, _opt("Weight of the Cauchy-Schwarz feature term.", "--cs-weight")] = 0.3,
    dice_weight: Annotated[float, _opt("Weight of Dice.", "--dice-weight")] = 0.2,
    kd_weight: KdWeight = 0.0,
    temperature: Temperature = 4.0,
    tau: Annotated[float, _opt("Temperature of the spatial softmax of features.", "--tau")] = 1.0,
    freeze_epochs: Annotated[float, _opt("Epochs with the student encoder frozen.", "--freeze-epochs")] = 0.0,
    optimizer: Annotated[str, _opt("adam or sgd (or adamw).", "--optimizer")] = "adam",
    schedule: Annotated[str, _opt("cosine or step (or poly).", "--schedule")] = "cosine",
    val_data: ValData = None,
    iters: Iters = 1000,
    lr: Lr = 1e-3,
    warmup: Warmup = 100,
    val_every: ValEvery = 250,
    val_limit: ValLimit = None,
    train_limit: TrainLimit = None,
    resume: Resume = None,
    jitter: Jitter = 0.2,
    hue: Hue = 0.0,
    grey: Grey = 0.0,
    imgsz: ImgSz = None,
    batch: Annotated[int, _opt("Images per step.", "--batch")] = 8,
    amp: Amp = False,
    seed: Seed = 0,
    device: Device = "auto",
    workers: Workers = 2,
    skip_bad: SkipBad = False,
    data_root: DataRoot = None,
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """Hybrid distillation loss: CE + Cauchy-Schwarz divergence on multi-scale features + Dice (+ logit KD)."""
    args = dict(
        aug=augment(jitter, hue, grey),
        teacher=teacher,
        ce_weight=ce_weight,
        cs_weight=cs_weight,
        dice_weight=dice_weight,
        kd_weight=kd_weight,
        temperature=temperature,
        tau=tau,
        freeze_epochs=freeze_epochs,
    )
    model_args = {"width": width} if student == "fastlitessnet" else {}
    train = dict(
        data=data,
        val_data=val_data,
        model=student,
        pretrained=pretrained,
        model_args=model_args,
        iters=iters,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        weight_decay=0.0 if optimizer == "adam" else 1e-4,
        warmup=warmup,
        val_every=val_every,
        val_limit=val_limit,
        train_limit=train_limit,
        imgsz=imgsz,
        batch=batch,
        amp=amp,
        seed=seed,
        device=device,
        workers=workers,
        skip_bad=skip_bad,
        data_root=data_root,
    )
    _distill("hdl", "HDL", resume, args, train, dict(name=name, out=out, exist_ok=exist_ok, device=device))


# ---- logit/feature distillation commands generated from a table: a new method is one row ----------------------
@dataclass(frozen=True)
class DistillCommand:
    """A `distill NAME` command: the shared options plus `options` (flag name -> (type, help)), each of which
    goes into method_args under its Python name, with its default from the method's schema (schema.defaults)."""

    label: str
    doc: str
    options: dict[str, tuple[Any, str]]
    student: str = "segformer-b0"
    lr: float = 6e-4


COMMANDS = {
    "sdd": DistillCommand(
        "SDD",
        "Scale decoupled distillation: CE + pixel KD + KD on multi-scale region logits.",
        {
            "scales": (list[int], "Region scales M (repeat: --scales 1 --scales 2 ...)."),
            "beta": (float, "Weight of complementary regions."),
            "temperature": (float, "KD temperature."),
            "kd_weight": (float, "Weight of pixel KD on logits."),
            "sdd_weight": (float, "Weight of the SDD term."),
        },
    ),
    "cwd": DistillCommand(
        "CWD",
        "Channel-wise distillation: CE + KL between each channel's spatial distributions (teacher || student).",
        {
            "tau": (float, "Temperature of each channel's spatial softmax."),
            "cwd_weight": (float, "Weight of CWD on the logit maps."),
            "feature_weight": (float, "Weight of CWD on the deepest encoder features through a 1x1 adapter."),
            "kd_weight": (float, "Weight of pixel KD on logits."),
            "temperature": (float, "Pixel KD temperature."),
        },
    ),
}


def _shared_options(spec: DistillCommand) -> list[tuple[str, Any, Any]]:
    """(name, annotation, default) of the options every generated command has, in --help order."""
    return [
        ("teacher", Teacher, None),
        ("data", Data, "synth-gta"),
        ("student", Student, spec.student),
        ("pretrained", Pretrained, None),
        ("val_data", ValData, None),
        ("iters", Iters, 1000),
        ("lr", Lr, spec.lr),
        ("warmup", Warmup, 100),
        ("val_every", ValEvery, 250),
        ("val_limit", ValLimit, None),
        ("train_limit", TrainLimit, None),
        ("resume", Resume, None),
        ("jitter", Jitter, 0.2),
        ("hue", Hue, 0.0),
        ("grey", Grey, 0.0),
        ("imgsz", ImgSz, None),
        ("batch", Annotated[int, _opt("Images per step.", "--batch")], 8),
        ("amp", Amp, False),
        ("seed", Seed, 0),
        ("device", Device, "auto"),
        ("workers", Workers, 2),
        ("skip_bad", SkipBad, False),
        ("data_root", DataRoot, None),
        ("out", Out, None),
        ("name", Name, "exp"),
        ("exist_ok", ExistOk, False),
    ]


def _make_command(method: str, spec: DistillCommand):
    shared = _shared_options(spec)
    from distilkit.schema import defaults

    default = defaults(method)
    own = [(k, Annotated[t, _opt(h, "--" + k.replace("_", "-"))], default[k]) for k, (t, h) in spec.options.items()]
    run_keys = ("name", "out", "exist_ok", "device")

    def command(**kw) -> None:
        args = {"aug": augment(kw.pop("jitter"), kw.pop("hue"), kw.pop("grey")), "teacher": kw.pop("teacher")}
        args |= {k: kw.pop(k) for k in spec.options}
        run = {k: kw[k] for k in run_keys}
        resume = kw.pop("resume")
        train = {k: v for k, v in kw.items() if k not in run_keys[:3]}
        train["model"] = train.pop("student")
        _distill(method, spec.label, resume, args, train, run)

    params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=a, default=d)
              for n, a, d in shared[:4] + own + shared[4:]]  # fmt: skip
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = spec.doc
    return user_errors(command)  # after the signature: the wrapper adds --config to it


for _method, _spec in COMMANDS.items():
    app.command(_method)(_make_command(_method, _spec))
