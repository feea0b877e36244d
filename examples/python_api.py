"""The core from Python: build a dataset and a model, evaluate a checkpoint, get a label map.

python examples/python_api.py runs/train-teacher/exp/weights/best.safetensors
"""

import sys

import torch

from distilkit.data import build_dataset
from distilkit.data.transforms import normalize, to_tensor
from distilkit.engine.checkpoint import info_from_meta, load_model
from distilkit.engine.inference import infer_logits
from distilkit.engine.validator import evaluate

model, meta = load_model(sys.argv[1])
dataset = build_dataset("synth-city", "val")
image, label = dataset.load(0)
x = normalize(to_tensor(image), meta["mean"], meta["std"])[None]
pred = infer_logits(model, x, tuple(meta["imgsz"])).argmax(1)[0]
print("pixel accuracy on one image:", (pred == torch.from_numpy(label)).float().mean().item())
results = evaluate(model, dataset, info_from_meta(meta), tuple(meta["imgsz"]), torch.device("cpu"), limit=20)
print(f"mIoU on 20 synth-city val images: {100 * results['miou']:.1f}")
