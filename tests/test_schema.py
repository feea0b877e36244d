"""Validation from one schema (distilkit/schema.py): training settings, method arguments, sweeps, --resume,
checkpoint and export metadata, graph signatures, label spaces, resume state, the scan cache and arm.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from distilkit.cli import app
from distilkit.engine.checkpoint import FORMAT, check_label_space, load_model, load_state, read_meta, validate_meta
from distilkit.engine.config import TrainConfig
from distilkit.errors import DistilkitError
from distilkit.schema import METHOD_ARGS, check_method_args

runner = CliRunner()
TINY = ["--imgsz", "64", "128", "--batch", "2", "--workers", "0", "--device", "cpu"]


def one_line_error(argv: list[str], cwd: Path, monkeypatch) -> str:
    """Run the CLI in-process in `cwd`: it must fail with exactly one `error:` line and leave no runs/ behind."""
    monkeypatch.chdir(cwd)
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert not (cwd / "runs").exists()
    return lines[0]


# ---- training settings ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"lr": math.inf}, "--lr inf: expected a number > 0 and <= 10"),
        ({"lr": math.nan}, "--lr nan"),
        ({"seed": 2**70}, f"--seed {2**70}: expected an integer >= 0 and <= 4294967295"),
        ({"batch": True}, "--batch True"),
        ({"iters": 10**8}, "--iters"),
        ({"imgsz": (0, 0)}, "--imgsz 0 0"),
        ({"imgsz": (64, 20000)}, "--imgsz 64 20000"),
        ({"optimizer": "adamm"}, "unknown optimizer"),
        ({"eval_mode": "tiles"}, "--eval-mode tiles"),
        ({"momentum": 2.0}, "--momentum 2.0"),
        ({"model_args": {"width": 0.0}}, "--width 0.0: expected a number > 0 and <= 4"),
        ({"model_args": {"pretrained": "/etc/passwd"}}, "unknown"),
        ({"method": "distil"}, "unknown method 'distil'"),
    ],
)
def test_train_config_refuses_bad_settings_in_one_line(kw, words):
    with pytest.raises(DistilkitError) as e:
        TrainConfig(**kw)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_train_config_keeps_its_dataclass_api():
    cfg = TrainConfig(iters=5, lr=0.1, method="kd", method_args={"teacher": "t.safetensors", "temperature": 4})
    assert cfg.iters == 5 and TrainConfig(**json.loads(cfg.to_json())) == TrainConfig(
        **{**json.loads(cfg.to_json()), "imgsz": None}
    )


@pytest.mark.parametrize(
    ("method", "args", "words"),
    [
        ("sdd", {"temperature": -1.0}, "--temperature -1.0: expected a number > 0 and <= 100"),
        ("sdd", {"scales": [0]}, "--scales 0"),
        ("sdd", {"scales": 2}, "--scales 2"),
        ("duda", {"ema": -3.0}, "--ema -3.0: expected a number >= 0 and < 1"),
        ("duda", {"pseudo_threshold": 7.0}, "--pseudo-threshold 7.0"),
        ("duda", {"ce_average": "mean"}, "--ce-average mean"),
        ("sakd", {"grid": 0}, "--grid 0: expected an integer >= 1 and <= 64"),
        ("sakd", {"base": "pkd"}, "--base pkd"),
        ("sakd", {"selection": "greedy"}, "--selection greedy"),
        ("sakd", {"lam": 2.0}, "--lambda 2.0"),
        ("sakd", {"ratio": 0.0}, "--ratio 0.0"),
        ("sakd", {"base": "hdl", "cs_weight": -1.0}, "--cs-weight -1.0"),
        ("hdl", {"tau": 0.0}, "--tau 0.0"),
        ("kd", {"kd_weight": True}, "--kd-weight True"),
        ("kd", {"temperature": "4"}, "--temperature 4"),
        ("cwd", {"kd_wieght": 1.0}, "unknown argument 'kd_wieght' for cwd; did you mean 'kd_weight'?"),
        ("kd", {"aug": {"jiter": 0.1}}, "unknown argument 'aug.jiter' for kd; did you mean 'jitter'?"),
        ("supervised", {"style": "cyclegan"}, "--style cyclegan"),
    ],
)
def test_method_arguments_are_checked_against_their_schema(method, args, words):
    with pytest.raises(DistilkitError) as e:
        TrainConfig(method=method, method_args=args)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_every_method_default_is_valid_and_duda_stages_add_up():
    for method, schema in METHOD_ARGS.items():
        check_method_args(method, schema().model_dump(exclude_none=True))
    with pytest.raises(DistilkitError, match="--iters 5: must equal --stage1-iters 2 \\+ --stage3-iters 2"):
        TrainConfig(method="duda", iters=5, method_args={"stage1_iters": 2, "stage3_iters": 2})


def test_args_json_with_an_unknown_setting_is_refused_by_name(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({**json.loads(TrainConfig().to_json()), "lerning_rate": 0.1}))
    with pytest.raises(DistilkitError, match="unknown setting 'lerning_rate'"):
        TrainConfig.from_file(path)
    path.write_text(json.dumps({**json.loads(TrainConfig().to_json()), "seed": 2**40}))
    with pytest.raises(DistilkitError, match="--seed"):
        TrainConfig.from_file(path)


def _any(*more):
    """Any scalar a hand-edited file or a careless caller passes, and `more` shapes."""
    scalars = (st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=5))
    return st.one_of(*scalars, *more)


_ARG_KEYS = ["temperature", "kd_weight", "scales", "grid", "ema", "base", "ratio", "aug", "tau", "x", "width",
             "epochs", "pseudo_threshold", "ce_average", "teacher", "stage1_iters"]  # fmt: skip
_TOP_KEYS = ["lr", "seed", "batch", "iters", "warmup", "imgsz", "optimizer", "val_limit", "grad_clip"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    method=st.sampled_from([*METHOD_ARGS, "nope"]),
    args=st.dictionaries(
        st.sampled_from(_ARG_KEYS),
        _any(st.lists(st.integers(-3, 100), max_size=3), st.dictionaries(st.text(max_size=4), st.floats())),
        max_size=4,
    ),
    top=st.dictionaries(
        st.sampled_from(_TOP_KEYS), _any(st.tuples(st.integers(-5, 20000), st.integers(-5, 20000))), max_size=3
    ),
)
def test_any_settings_give_a_config_or_one_error_line(method, args, top):
    try:
        TrainConfig(method=method, method_args=args, **top)
    except DistilkitError as e:
        assert str(e) and "\n" not in str(e)


# ---- the CLI ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["distill", "hdl", "--width", "0"], "--width 0.0"),
        (["distill", "sdd", "--temperature", "-1"], "--temperature -1.0"),
        (["distill", "sdd", "--scales", "0"], "--scales 0"),
        (["distill", "sakd", "--grid", "0"], "--grid 0"),
        (["distill", "duda", "--ema", "-3", "--pseudo-threshold", "7"], "--ema -3.0"),
        (["train-teacher", "--lr", "inf"], "--lr inf"),
        (["train-teacher", "--seed", str(2**40)], f"--seed {2**40}"),
        (["train-teacher", "--resume", "somewhere", "--iters", "6"], "drop --iters"),
        (["distill", "sdd", "--resume", "somewhere", "--lr", "0.1", "--iters", "6"], "drop --iters, --lr"),
    ],
)
def test_cli_refuses_before_any_run_directory(argv, words, tmp_path, monkeypatch):
    assert words in one_line_error([*argv, *TINY], tmp_path, monkeypatch)


def test_compare_sweep_of_an_unknown_option_trains_nothing(tiny_data, tiny_ckpt, tmp_path, monkeypatch):
    argv = ["compare", "--teacher", str(tiny_ckpt), "--data", "folder", "--data-root", str(tiny_data),
            "--iters", "2", "--seeds", "0", "--sweep", "kd_wieght=0,100", *TINY]  # fmt: skip
    line = one_line_error(argv, tmp_path, monkeypatch)
    assert "unknown argument 'kd_wieght' for kd; did you mean 'kd_weight'?" in line


def test_export_verification_data_must_be_a_known_data_set(tiny_ckpt):
    from distilkit.engine.exporter import real_image

    with pytest.raises(DistilkitError, match="--data foldr: unknown dataset; known: .*folder"):
        real_image(read_meta(tiny_ckpt), "foldr", None)


# ---- checkpoint metadata, weights and label spaces --------------------------------------------------------------
def edited(ckpt: Path, edit) -> str:
    meta = read_meta(ckpt)
    edit(meta)
    return json.dumps(meta)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda m: m.update(std=[float("nan"), 0.2, 0.2]), "'std'"),
        (lambda m: m.update(mean=[float("inf"), 0.2, 0.2]), "'mean'"),
        (lambda m: m.update(std=[1e-9, 0.2, 0.2]), "'std'"),
        (lambda m: m["class_names"].__setitem__(1, m["class_names"][0]), "twice"),
        (lambda m: m["palette"].__setitem__(0, [0, 0, 256]), "'palette'"),
        (lambda m: m["arch"].update(pretrained="/etc/passwd"), "'arch' may not hold 'pretrained'"),
        (lambda m: m["arch"].update(encoder_weights="imagenet"), "'arch' may not hold 'encoder_weights'"),
        (lambda m: m.update(imgsz=[True, 64]), "'imgsz'"),
    ],
)
def test_checkpoint_metadata_is_checked_against_its_schema(tiny_ckpt, edit, words):
    with pytest.raises(DistilkitError) as e:
        validate_meta(edited(tiny_ckpt, edit), Path("x.safetensors"))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_arch_arguments_must_be_the_builders_own(tiny_ckpt, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_ckpt))
    forged = tmp_path / "forged.safetensors"
    save_file(state, str(forged), metadata={FORMAT: edited(tiny_ckpt, lambda m: m["arch"].update(width=0.5))})
    with pytest.raises(DistilkitError, match="takes no argument 'width' from a file"):
        load_model(forged)
    first = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[first] = state[first].to(torch.int8)
    save_file(state, str(forged), metadata={FORMAT: json.dumps(read_meta(tiny_ckpt))})
    with pytest.raises(DistilkitError, match="torch.int8 tensors where the model has floating point weights"):
        load_model(forged)
    assert load_model(tiny_ckpt)[1]["arch"]["name"] == "segformer-b0"


def test_label_spaces_match_by_names_not_count(tiny_ckpt):
    meta = read_meta(tiny_ckpt)
    check_label_space(meta["class_names"], meta["class_names"], "--teacher t")
    other = [f"class{i}" for i in range(len(meta["class_names"]))]
    with pytest.raises(DistilkitError) as e:
        check_label_space(meta["class_names"], other, "--teacher t")
    line = str(e.value)
    assert "--teacher t predicts 19 classes [road, sidewalk" in line and "19 classes [class0, class1" in line
    assert "class10" not in line  # a long list is shortened: first five, then the last two


def test_distill_refuses_a_teacher_of_another_label_space(tiny_data, tiny_ckpt, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    teacher = tmp_path / "other.safetensors"
    meta = edited(tiny_ckpt, lambda m: m["class_names"].__setitem__(0, "street"))
    save_file(load_file(str(tiny_ckpt)), str(teacher), metadata={FORMAT: meta})
    argv = ["distill", "sdd", "--teacher", str(teacher), "--data", "folder", "--data-root", str(tiny_data),
            "--iters", "1", *TINY]  # fmt: skip
    line = one_line_error(argv, tmp_path, monkeypatch)
    assert "predicts 19 classes [street" in line and "the data has 19 classes [road" in line


# ---- exported graphs --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("inputs", "outputs", "words"),
    [
        ([([1, 3, 64, 64], "float32")] * 2, [([1, 19, 64, 64], "float32")], "2 inputs"),
        ([([1, 3, 64, 64], "float32")], [([1, 3, 64, 64], "float32")], "3 score channels, but its metadata names 19"),
        ([([1, 3, 64, 64], "float32")], [([1, 64, 64], "int64")], "int64"),
        ([([1, 1, 64, 64], "float32")], [([1, 19, 64, 64], "float32")], "N x 3 x H x W"),
    ],
)
def test_graph_signature_must_match_the_metadata(inputs, outputs, words):
    from distilkit.engine.predictor import check_graph

    with pytest.raises(DistilkitError, match=words):
        check_graph(Path("m.onnx"), inputs, outputs, 19)
    check_graph(Path("m.onnx"), [([None, 3, None, None], "float32")], [([None, 19, None, None], "float16")], 19)


def test_an_onnx_file_whose_output_disagrees_is_not_evaluated(tiny_ckpt, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from distilkit.engine.predictor import OnnxModel

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 64, 64])
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["logits"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {FORMAT: json.dumps(read_meta(tiny_ckpt))})
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(DistilkitError, match="3 score channels, but its metadata names 19 classes"):
        OnnxModel(tmp_path / "m.onnx", torch.device("cpu"))


# ---- files read back: resume state, scan cache, arm.json --------------------------------------------------------
def test_a_training_state_of_another_shape_is_one_line(tmp_path):
    path = tmp_path / "last.state.pt"
    torch.save({"step": "3", "networks": {}}, path)
    with pytest.raises(DistilkitError, match="not a distilkit training state \\('step'"):
        load_state(path)


def test_a_damaged_scan_cache_is_discarded_and_rebuilt(tiny_data, tmp_path, monkeypatch, capsys):
    from distilkit.data import build_dataset
    from distilkit.data.scan import preflight

    monkeypatch.setenv("DISTILKIT_CACHE", str(tmp_path))
    dataset = build_dataset("folder", "train", tiny_data)
    preflight(dataset)
    (cache,) = tmp_path.glob("scan-*.json")
    entries = json.loads(cache.read_text())
    cache.write_text(json.dumps({k: {"sig": v["sig"], "error": 3} for k, v in entries.items()}))
    preflight(dataset)
    assert "damaged; discarded" in capsys.readouterr().err
    assert json.loads(cache.read_text()) == entries


def test_a_malformed_arm_result_is_one_line(tmp_path):
    from distilkit.engine.compare import read_arm

    path = tmp_path / "arm.json"
    path.write_text(json.dumps({"miou": "high", "train_s": 1.0, "iters": 2, "per_class": {}}))
    with pytest.raises(DistilkitError, match="malformed arm result \\('miou'"):
        read_arm(path)
    path.write_text(json.dumps({"miou": 50.0, "train_s": 1.0, "iters": 2, "per_class": {"road": None}}))
    assert read_arm(path)["miou"] == 50.0


def test_every_distill_option_defaults_to_its_schema_default():
    """The schema is where a method argument's default is written; a command's option that goes into
    method_args must show the same default (the table-made commands take it from there, the others are
    checked here)."""
    import inspect

    from distilkit.cli import distill
    from distilkit.schema import defaults

    commands = {c.name: c.callback for c in distill.app.registered_commands}
    checked = 0
    for name, method in {"sdd": "sdd", "cwd": "cwd", "hdl": "hdl", "sakd": "sakd", "duda": "duda"}.items():
        want = defaults(method)
        for p in inspect.signature(commands[name]).parameters.values():
            if p.name in want and p.default is not None and p.name != "teacher":
                assert p.default == want[p.name], f"distill {name} --{p.name}: {p.default!r} != {want[p.name]!r}"
                checked += 1
    assert checked >= 30


# ---- gaps a hostile tester found --------------------------------------------------------------------------------
def test_opset_is_bounded_by_what_this_torch_exports():
    from distilkit.schema import ONNX_MAX_OPSET, check_options

    assert ONNX_MAX_OPSET == torch.onnx._constants.ONNX_MAX_OPSET  # an upgrade that moves it fails here
    check_options({"opset": ONNX_MAX_OPSET})
    with pytest.raises(DistilkitError, match=f"--opset {ONNX_MAX_OPSET + 1}: expected an integer >= 11 and <= 23"):
        check_options({"opset": ONNX_MAX_OPSET + 1})


def test_export_verification_on_named_data_that_cannot_load_is_one_line(tiny_ckpt, tmp_path, capsys):
    from distilkit.engine.exporter import real_image

    meta = read_meta(tiny_ckpt)
    for data, root in (("folder", tmp_path / "nonexistent"), ("folder", None), ("camvid", tmp_path)):
        with pytest.raises(DistilkitError) as e:
            real_image(meta, data, root)
        assert str(e.value).startswith(f"--data {data}: no image to verify the export on") and "\n" not in str(e.value)
    assert real_image({**meta, "dataset": "camvid"}, None, tmp_path).ndim == 3  # no --data: a generated scene ...
    assert "verifying on a generated street scene" in capsys.readouterr().err  # ... said aloud


def test_a_sweep_value_given_twice_is_refused():
    from distilkit.cli.compare import parse_sweep

    for sweep in ("kd_weight=1,1", "kd_weight=1,2,1.0"):
        with pytest.raises(DistilkitError, match="value 1(\\.0)? given twice; give each value once"):
            parse_sweep(sweep)
    assert parse_sweep("kd_weight=1,2") == ("kd_weight", [1, 2])


def test_a_config_key_given_twice_is_refused(tmp_path, monkeypatch):
    config = tmp_path / "twice.yaml"
    config.write_text("iters: 1\niters: 2\n")
    line = one_line_error(["train-teacher", "--config", str(config)], tmp_path, monkeypatch)
    assert line == f"error: --config {config}: key 'iters' given twice"


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda m: m.update(hello=1), "unknown key 'hello'"),
        (lambda m: m.update(ignore_index=-1), "'ignore_index'"),
        (lambda m: m.update(ignore_index=10**12), "'ignore_index'"),
        (lambda m: m.update(method="rm -rf"), "'method'"),
        (lambda m: m.update(dataset="../../../etc"), "'dataset'"),
        (lambda m: m.update(eval_classes=[0, 0, 1]), "'eval_classes' names a class id twice"),
        (lambda m: m.update(eval_classes=[]), "'eval_classes'"),
        (lambda m: m.update(metrics={"miou": float("nan")}), "'metrics' (at miou)"),
        (lambda m: m.update(metrics={"loss": 1.0}), "'metrics' may not hold 'loss'"),
        (lambda m: m.update(encoder_init="/etc/passwd"), "'encoder_init'"),
        (lambda m: m.update(encoder_init={"weights": "imagenet", "url": "http://x"}), "may not hold 'url'"),
        (lambda m: m["class_names"].__setitem__(0, "\x1b[2J\x1b[31mEVIL"), "'class_names' (at 0)"),
        (lambda m: m["class_names"].__setitem__(0, "a\nerror: fake"), "'class_names' (at 0)"),
        (lambda m: m.update(onnx={"opset": 99, "dynamic": True, "input_shape": [1, 3, 64, 128]}), "'onnx'"),
    ],
)
def test_checkpoint_metadata_is_closed_and_bounded(tiny_ckpt, edit, words):
    with pytest.raises(DistilkitError) as e:
        validate_meta(edited(tiny_ckpt, edit), Path("x.safetensors"))
    assert words in str(e.value) and "\n" not in str(e.value) and "\x1b" not in str(e.value)


def test_every_key_distilkit_writes_is_in_the_metadata_schema(tiny_ckpt):
    full = {**read_meta(tiny_ckpt), "val_data": "synth-city", "train_data": "synth-gta", "precision": "int8",
            "format": "openvino", "encoder_init": {"weights": "imagenet", "source": "smp hub download"},
            "metrics": {"miou": 0.5, "pixel_acc": 1.0, "step": 3}, "eval_classes": [0, 2],
            "onnx": {"opset": 17, "dynamic": True, "input_shape": [1, 3, 64, 128]},
            "calibration": {"data": "folder", "split": "train", "images": 8, "method": "minmax", "seed": 0,
                            "keep_float": ["/encoder/model/conv_stem"]}}  # fmt: skip
    assert validate_meta(json.dumps(full), Path("x.onnx")) == full


def test_an_arm_result_of_another_run_is_not_reused(tiny_ckpt, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from distilkit.engine.compare import finished, read_arm

    cfg = TrainConfig(iters=1)
    (tmp_path / "weights").mkdir()
    (tmp_path / "args.json").write_text(cfg.to_json())
    meta = edited(tiny_ckpt, lambda m: m.update(metrics={"miou": 0.5, "step": 1}))
    save_file(load_file(str(tiny_ckpt)), str(tmp_path / "weights/last.safetensors"), metadata={FORMAT: meta})
    row = {"miou": 50.0, "train_s": 1.0, "iters": 1, "per_class": dict.fromkeys(json.loads(meta)["class_names"], 1.0)}
    (tmp_path / "arm.json").write_text(json.dumps(row))
    assert finished(tmp_path, cfg)
    assert not finished(tmp_path, TrainConfig(iters=2))  # a run of another length is not this experiment's
    for bad in ({**row, "per_class": {"[/]": 1.0}}, {**row, "iters": 999}):
        (tmp_path / "arm.json").write_text(json.dumps(bad))
        assert not finished(tmp_path, cfg)
        assert "training this arm again" in capsys.readouterr().err
    (tmp_path / "arm.json").write_text(json.dumps({**row, "extra": 1}))
    with pytest.raises(DistilkitError, match="malformed arm result \\('extra'"):
        read_arm(tmp_path / "arm.json")


@pytest.mark.parametrize("name", ["\x1b[2J\x1b[31mEVIL", "a\nerror: fake", ""])
def test_folder_class_names_must_be_printable(tiny_data, tmp_path, name):
    import shutil

    from distilkit.data import build_dataset

    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    spec = json.loads((root / "classes.json").read_text())
    spec["names"][3] = name
    (root / "classes.json").write_text(json.dumps(spec))
    with pytest.raises(DistilkitError) as e:
        build_dataset("folder", "val", root)
    assert f"class name {name!r} must be 1 to 200 printable characters" in str(e.value)
    assert "\n" not in str(e.value) and "\x1b" not in str(e.value)


def test_an_unknown_key_with_a_newline_is_named_on_one_line():
    """Found by the hypothesis test above: a key from a file is data, shown escaped, never breaking the line."""
    for args in ({"aug": {"\n": 0.0}}, {"\n": 1}):
        with pytest.raises(DistilkitError) as e:
            TrainConfig(method="supervised", method_args=args)
        assert "\n" not in str(e.value) and "\\n" in str(e.value)
