"""Training methods (supervised teacher training and the distillation methods), in a registry.

A method supplies its networks, its data, its per-step losses and which parameters train; the engine
owns the loop. Adding one means one file here with `@register_method`.
"""

from distilkit.methods import cwd, duda, hdl, kd, sakd, sdd, supervised, target_kd  # noqa: F401  (registration)
from distilkit.methods.base import Method, build_method, method_names, register_method

__all__ = ["Method", "build_method", "method_names", "register_method"]
