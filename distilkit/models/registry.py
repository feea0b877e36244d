"""Name -> builder. A builder takes (num_classes, pretrained, **arch_args) and returns a SegModel."""

from __future__ import annotations

from collections.abc import Callable

from distilkit.errors import DistilkitError

_MODELS: dict[str, Callable] = {}


def register_model(*names: str) -> Callable:
    def wrap(fn: Callable) -> Callable:
        for name in names:
            _MODELS[name] = fn
        return fn

    return wrap


def model_names() -> list[str]:
    return sorted(_MODELS)


def model_table() -> list[dict]:
    """One row per registered model: name, what it is, and where `--pretrained imagenet` gets its weights."""
    from distilkit.models.pretrained import OFFLINE

    rows = []
    for name in model_names():
        fn = _MODELS[name]
        encoder = getattr(fn, "encoder", None)
        weights = "offline (installed)" if encoder in OFFLINE else "download (smp)" if encoder else "none"
        rows.append({"name": name, "about": (fn.__doc__ or "").strip().split("\n")[0], "imagenet": weights})
    return rows


def create_model(name: str, num_classes: int, pretrained: str | None = None, **arch_args):
    """Build a registered model. `pretrained`: None (random init), 'imagenet' (smp download) or a file path."""
    if name not in _MODELS:
        raise DistilkitError(f"unknown model '{name}'; known: {', '.join(model_names())}")
    model = _MODELS[name](num_classes=num_classes, pretrained=pretrained, **arch_args)
    model.arch = {"name": name, "num_classes": num_classes, **arch_args}
    return model
