"""Supervised training on a labelled set: what `train-teacher` runs (and the source-only baseline)."""

from __future__ import annotations

from distilkit.data import build_dataset
from distilkit.data.loader import TrainView
from distilkit.data.scan import preflight
from distilkit.data.style import style_reference
from distilkit.data.transforms import AugmentConfig
from distilkit.engine.checkpoint import check_label_space, load_model
from distilkit.engine.config import TrainConfig
from distilkit.losses import cross_entropy
from distilkit.methods.base import Method, register_method
from distilkit.models import SegModel, create_model


@register_method("supervised")
class Supervised(Method):
    def __init__(self, cfg: TrainConfig):
        super().__init__(cfg)
        self.train_set = build_dataset(cfg.data, "train", cfg.data_root, cfg.skip_bad).head(cfg.train_limit)
        preflight(self.train_set)  # every bad sample now, before the first step
        self._val = build_dataset(cfg.val_data or cfg.data, cfg.val_split, cfg.data_root, cfg.skip_bad)
        self._info = self.train_set.info
        self.imgsz = tuple(cfg.imgsz or self.default_imgsz())
        self.model = self._initial_model()
        aug = AugmentConfig(**cfg.method_args.get("aug", {}))
        style = style_reference(cfg.method_args, cfg.data_root)
        beta = cfg.method_args.get("fda_beta", 0.01)
        self.view = TrainView(self.train_set, self.imgsz, aug, self._info.mean, self._info.std, None, style, beta)

    def _initial_model(self) -> SegModel:
        """A new `cfg.model`, or the model of a `--weights` checkpoint to fine-tune (its own architecture)."""
        n, weights = self._info.num_classes, self.cfg.method_args.get("weights")
        if not weights:
            return create_model(self.cfg.model, n, self.cfg.pretrained, **self.cfg.model_args)
        model, meta = load_model(weights)
        check_label_space(meta["class_names"], self._info.class_names, f"--weights {weights}")
        return model

    def default_imgsz(self) -> tuple[int, int]:
        return self._info.default_imgsz

    def networks(self):
        return {"model": self.model}

    def train_views(self):
        return {"train": self.view}

    def param_groups(self):
        return self.model.param_groups(head_lr_mult=self.cfg.head_lr_mult)

    def training_step(self, batch, step):
        images, labels, _ = batch["train"]
        logits = self.model(images)
        return {"loss": cross_entropy(logits, labels, self._info.ignore_index)}

    def student(self):
        return self.model

    def info(self):
        return self._info

    def val_dataset(self):
        return self._val
