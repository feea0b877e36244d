"""Label maps from RGB frames, through a PyTorch checkpoint or an exported file (ONNX, OpenVINO IR), on one
inference path."""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from distilkit.data.transforms import base_scale, normalize
from distilkit.engine.checkpoint import FORMAT, load_model
from distilkit.engine.inference import class_map, infer_logits
from distilkit.errors import DistilkitError, first_line
from distilkit.utils.boundary import is_oom
from distilkit.utils.limits import check_fits
from distilkit.utils.threads import WriteBehind, prefetch


class ExportedModel:
    """An exported file that behaves like a model on the inference path (tensor in, tensor out, always in eval
    mode); subclasses load the file and run one batch."""

    training = False
    meta: dict
    static: list[int | None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if any(s is not None and s != d for s, d in zip(self.static, x.shape, strict=True)):
            raise DistilkitError(
                f"this exported model has a static input {self.static} and cannot take {list(x.shape)}; "
                "export without --static, or match --batch and --imgsz"
            )
        return torch.from_numpy(self.run(x.detach().float().cpu().numpy())).to(x.device)

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def eval(self) -> ExportedModel:
        return self

    def train(self, mode: bool = True) -> ExportedModel:
        return self


def check_graph(path: Path, inputs: list[tuple[list, str]], outputs: list[tuple[list, str]], num_classes: int) -> None:
    """An exported graph's signature against its metadata: one float image input N x 3 x H x W and one float
    output N x num_classes x H x W (dims None when dynamic); anything else would be evaluated as garbage."""

    def shown(shape: list) -> str:
        return "x".join("?" if d is None else str(d) for d in shape)

    def bad(what: str) -> DistilkitError:
        return DistilkitError(f"{path}: the exported graph {what}; re-export it with `distilkit export-onnx`")

    if len(inputs) != 1 or len(outputs) != 1:
        raise bad(f"has {len(inputs)} inputs and {len(outputs)} outputs, not one image in and one score map out")
    (shape, dtype), (out_shape, out_dtype) = inputs[0], outputs[0]
    if len(shape) != 4 or shape[1] not in (None, 3) or dtype not in ("float32", "float16"):
        raise bad(f"takes a {dtype} {shown(shape)} input, not a float N x 3 x H x W image")
    if len(out_shape) != 4 or out_dtype not in ("float32", "float16"):
        raise bad(f"gives a {out_dtype} {shown(out_shape)} output, not float N x classes x H x W scores")
    if out_shape[1] not in (None, num_classes):
        raise bad(f"gives {out_shape[1]} score channels, but its metadata names {num_classes} classes")


def _distilkit_meta(raw: str | None, path: Path, kind: str) -> dict:
    from distilkit.engine.checkpoint import validate_meta

    if raw is None:
        raise DistilkitError(f"{path} is an {kind} model but not a distilkit export (no '{FORMAT}' metadata)")
    return validate_meta(raw, path)


class OnnxModel(ExportedModel):
    """An onnxruntime session (TensorRT or CUDA when a CUDA device is asked for and onnxruntime-gpu has them)."""

    def __init__(self, path: Path, device: torch.device):
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":  # onnxruntime-gpu: TensorRT first where its libraries are installed, then CUDA
            gpu = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
            providers = [p for p in gpu if p in ort.get_available_providers()] + providers
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = torch.get_num_threads()  # the one thread setting (utils.device.set_threads)
        # no busy-waiting between runs: torch's resize/argmax threads and the video I/O threads share these
        # cores with onnxruntime's pool, and its spinning took them (INT8 Lite0 at 360x480 on 2 cores: the model
        # path 29 -> 49 frames/s, video predict 21 -> 30 without it; docs/benchmarks.md "Video")
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own error types for invalid or foreign files
            raise DistilkitError(f"cannot load ONNX model {path}: {first_line(e)}") from None
        self.meta = _distilkit_meta(self.session.get_modelmeta().custom_metadata_map.get(FORMAT), path, "ONNX")
        types = {"tensor(float)": "float32", "tensor(float16)": "float16"}

        def sig(args) -> list[tuple[list, str]]:
            return [([d if isinstance(d, int) else None for d in a.shape], types.get(a.type, a.type)) for a in args]

        check_graph(path, sig(self.session.get_inputs()), sig(self.session.get_outputs()), self.meta["num_classes"])
        self.input = self.session.get_inputs()[0].name
        self.static = sig(self.session.get_inputs())[0][0]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x})[0]


OPENVINO_KEY = ["distilkit", "meta"]  # where an OpenVINO IR keeps distilkit's metadata (its rt_info)


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise DistilkitError(
            "OpenVINO is not installed: pip install 'distilkit[openvino]' (or pip install openvino)"
        ) from None
    return openvino


class OpenVinoModel(ExportedModel):
    """An OpenVINO IR (.xml + .bin) compiled for the CPU."""

    def __init__(self, path: Path):
        ov = import_openvino()
        core = ov.Core()
        if not (weights := Path(path).with_suffix(".bin")).is_file():
            raise DistilkitError(f"cannot load OpenVINO model {path}: its weights {weights.name} are not beside it "
                                 "(an IR is the .xml and the .bin together)")  # fmt: skip
        try:
            model = core.read_model(str(path))
        except Exception as e:  # OpenVINO raises its own error types for invalid or foreign files
            raise DistilkitError(f"cannot load OpenVINO model {path}: {first_line(e)} (is {weights.name} whole, "
                                 "written with this .xml?)") from None  # fmt: skip
        raw = model.get_rt_info(OPENVINO_KEY).astype(str) if model.has_rt_info(OPENVINO_KEY) else None
        self.meta = _distilkit_meta(raw, path, "OpenVINO")
        types = {"f32": "float32", "f16": "float16"}

        def sig(ports) -> list[tuple[list, str]]:
            def dims(p) -> list:  # an unknown rank: no dims, refused as not rank 4
                return (
                    [d.get_length() if d.is_static else None for d in p.partial_shape]
                    if p.partial_shape.rank.is_static
                    else []
                )

            return [(dims(p), types.get(p.get_element_type().get_type_name(), "other")) for p in ports]

        check_graph(path, sig(model.inputs), sig(model.outputs), self.meta["num_classes"])
        self.static = sig(model.inputs)[0][0]
        # f32 arithmetic: on CPUs with bf16 units OpenVINO would otherwise run an fp32 IR in bf16 (its default)
        self.compiled = core.compile_model(
            model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
        )

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.compiled(x)[0]


def load_backend(weights: Path, device: torch.device, half: bool = False):
    """A .safetensors checkpoint, an .onnx export or an OpenVINO .xml -> (model callable, metadata)."""
    weights = Path(weights)
    if weights.suffix in (".onnx", ".xml"):
        if not weights.is_file():
            raise DistilkitError(f"exported model not found: {weights}")
        if half:
            raise DistilkitError("--half applies to checkpoints; export with --fp16 for a half-precision file")
        model = OnnxModel(weights, device) if weights.suffix == ".onnx" else OpenVinoModel(weights)
        return model, model.meta
    model, meta = load_model(weights, device)
    if half:
        if device.type != "cuda":
            raise DistilkitError("--half needs a CUDA device (on the CPU, inference runs in fp32)")
        model = model.half()
    return model, meta


class Predictor:
    """Frames (RGB uint8, any size) -> label maps at the same size."""

    def __init__(self, model, meta: dict, device: torch.device, mode: str = "whole", half: bool = False):
        if mode not in ("whole", "slide"):
            raise DistilkitError(f"--mode {mode}: expected whole or slide")
        self.model, self.meta, self.device, self.mode, self.half = model, meta, device, mode, half
        self.imgsz = tuple(meta["imgsz"])
        self.palette = np.asarray(meta["palette"], dtype=np.float32)
        self.fitted: set[tuple[int, int, int]] = set()  # (batch, H, W) checked: a video's frames are checked once

    def check_fits(self, frames: list[np.ndarray]) -> None:
        """Refuse frames whose size, scaled to cover the model's input size, cannot fit in memory (a 1x10000
        image scales to 512x5120000), before any work on them."""
        h, w = frames[0].shape[:2]
        if (len(frames), h, w) in self.fitted:
            return
        s = base_scale(h, w, self.imgsz)
        sh, sw = max(1, round(h * s)), max(1, round(w * s))
        check_fits(len(frames), sh, sw, training=False, what=f"an image of {h}x{w} (scaled to {sh}x{sw}) x --batch "
                   f"{len(frames)}", advice="crop or resize the image to a usual aspect ratio")  # fmt: skip
        self.fitted.add((len(frames), h, w))

    @torch.no_grad()
    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        if len({f.shape for f in frames}) > 1:
            return [label for f in frames for label in self([f])]
        self.check_fits(frames)
        # NCHW in memory before any arithmetic: a permuted (channels-last) batch made the resize 4x slower
        x = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2).contiguous().float().div_(255)
        x = normalize(x, self.meta["mean"], self.meta["std"])
        if self.half:
            x = x.half()
        try:
            logits = infer_logits(self.model, x, self.imgsz, self.mode)
        except RuntimeError as e:
            if len(frames) > 1 or not is_oom(e):  # a batch: the boundary's line says which --batch to try
                raise
            h, w = frames[0].shape[:2]
            raise DistilkitError(f"out of memory on one image of {h}x{w} (this model scales it to cover "
                                 f"{self.imgsz[0]}x{self.imgsz[1]}): resize it, or crop it to a usual aspect "
                                 "ratio") from None  # fmt: skip
        return list(class_map(logits).to(torch.uint8).cpu().numpy())


def batched(items: Iterable, n: int) -> Iterator[list]:
    """Lists of up to n items, pulled lazily (constant memory for long videos and big folders)."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_predict(
    source: str,
    weights: Path | None,
    backend: str,
    device: torch.device,
    make_run_dir: Callable[[], Path],
    mode: str = "whole",
    batch: int = 4,
    half: bool = False,
    save_mask: bool | None = None,
    save_overlay: bool = True,
    alpha: float = 0.5,
) -> dict:
    """Predict on images or a video and write masks / overlays / an overlay video into a new run dir.

    Masks are palette PNGs (pixel value = class id). Images get masks and overlays by default; a video
    gets an overlay mp4 at its frame rate (audio dropped), and per-frame masks with `save_mask=True`.
    """
    from distilkit.engine.checkpoint import resolve_weights
    from distilkit.engine.sources import (
        VideoWriter,
        colour_mask,
        input_folders,
        output_names,
        overlay,
        read_images,
        resolve_source,
        video_frames,
    )
    from distilkit.utils.console import err_console
    from distilkit.utils.files import atomic_write, expect, protect, write_json
    from distilkit.utils.progress import progress_bar

    if backend not in ("torch", "onnx"):
        raise DistilkitError(f"--backend {backend}: expected torch or onnx")
    src = resolve_source(source)
    if weights is None:
        weights = resolve_weights(None, "**/weights/best.onnx" if backend == "onnx" else "**/weights/best.safetensors")
    elif backend == "onnx" and Path(weights).suffix != ".onnx":
        raise DistilkitError(f"--backend onnx needs an .onnx file (export one: distilkit export-onnx {weights})")
    protect(weights, *src.paths, *input_folders(source, src))  # never written over, --exist-ok or not
    model, meta = load_backend(weights, device, half)
    predictor = Predictor(model, meta, device, mode, half)
    video = src.kind == "video"
    if video:
        frames, rate, count = video_frames(src.paths[0])
        stem = src.paths[0].stem
        items = ((f"{stem}_{i:06d}", frame) for i, frame in enumerate(frames))
    else:
        names = dict(zip(src.paths, output_names(src.paths), strict=True))
        count, items = len(src.paths), ((names[p], image) for p, image in read_images(src.paths))
    sources = {name: str(path) for path, name in names.items()} if not video else {}
    chunks = batched(items, batch)
    first = next(chunks, None)  # a bad first image or an empty video fails here, before any output exists
    if first is None:
        raise DistilkitError(f"video {src.paths[0]} has no frames")
    for same_size in ([f] for f in first) if len({f[1].shape for f in first}) > 1 else [first]:
        predictor.check_fits([image for _, image in same_size])  # before the run directory exists
    masks_on = save_mask if save_mask is not None else not video
    overlays_on = save_overlay and not video
    # every output name reserved before the run directory holds anything: a refusal leaves nothing written
    expect(
        "predictions.json",
        *([f"{src.paths[0].stem}.mp4"] if video else []),
        *(f"masks/{n}.png" for n in sources if masks_on),
        *(f"overlays/{n}.jpg" for n in sources if overlays_on),
    )
    run_dir = make_run_dir()
    err_console.print(f"predicting with {weights} into {run_dir}")
    for sub, on in (("masks", masks_on), ("overlays", overlays_on)):
        if on:
            (run_dir / sub).mkdir(exist_ok=True)
    outputs: list[dict] = []
    video_out: list = []  # the VideoWriter, made on the first frame (its size)
    out_video = run_dir / f"{src.paths[0].stem}.mp4"

    def save(chunk: list, labels: list) -> None:
        """Masks, overlays and video frames of one batch (runs behind inference, in order)."""
        for (name, image), label in zip(chunk, labels, strict=True):
            entry = {"source": sources.get(name, str(src.paths[0])), "name": name}
            if masks_on:
                entry["mask"] = str(run_dir / "masks" / f"{name}.png")
                mask = colour_mask(label, meta["palette"])
                atomic_write(Path(entry["mask"]), lambda p, m=mask: m.save(p, format="PNG"))  # no half-written mask
            if video:
                if not video_out:
                    video_out.append(VideoWriter(out_video, rate, image.shape[1], image.shape[0]))
                video_out[0].write(overlay(image, label, predictor.palette, alpha))
            else:
                if save_overlay:
                    entry["overlay"] = str(run_dir / "overlays" / f"{name}.jpg")
                    blend = Image.fromarray(overlay(image, label, predictor.palette, alpha))
                    atomic_write(Path(entry["overlay"]), lambda p, b=blend: b.save(p, format="JPEG", quality=92))
                outputs.append(entry)
            written[0] += 1

    def finish(interrupted: bool = False) -> dict:
        """predictions.json: each source with its outputs; after an interruption, those written so far."""
        summary = {"weights": str(weights), "source": source, "kind": src.kind, "count": written[0],
                   "outputs": outputs, **({"interrupted": True} if interrupted else {})}  # fmt: skip
        if video:
            summary.update(video=str(out_video), fps=float(rate))
        write_json(run_dir / "predictions.json", summary)
        return summary

    written, writer = [0], WriteBehind(depth=2)
    try:
        with progress_bar() as bar:
            task = bar.add_task(src.paths[0].name if video else "predict", total=count or None,
                                unit="frame" if video else "img")  # fmt: skip
            for chunk in itertools.chain([first], prefetch(chunks, depth=2)):
                # the writer's thread sees this command's write guard (a thread starts with an empty context)
                writer.submit(contextvars.copy_context().run, save, chunk, predictor([im for _, im in chunk]))
                bar.advance(task, len(chunk))
            writer.drain()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (made one by the CLI): keep a record of what was written
        try:
            writer.close()
        finally:
            if video_out:
                video_out[0].close()
                video_out.clear()
            finish(interrupted=True)
        raise
    finally:
        writer.close()
        if video_out:
            video_out[0].close()
    return {**finish(), "run_dir": str(run_dir)}
