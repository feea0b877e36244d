"""The one training loop, for train-teacher and every distillation method.

Owns devices, mixed precision, optimiser and schedule, gradient clipping, periodic evaluation, best/last
checkpoints, resumable training state, progress, metrics.csv and the loss curve. A `Method` owns the rest.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import numpy as np
import torch
from rich.progress import TextColumn

from distilkit.data.loader import train_loader
from distilkit.engine import distributed as ddp
from distilkit.engine.checkpoint import load_state, model_meta, save_model, save_state
from distilkit.engine.config import TrainConfig
from distilkit.engine.live import LiveLog
from distilkit.engine.optim import build_optimizer, build_scheduler, check_names
from distilkit.engine.validator import autocast, evaluate
from distilkit.errors import DistilkitError
from distilkit.methods.base import Method
from distilkit.utils.boundary import uninterrupted
from distilkit.utils.console import console, err_console, styled
from distilkit.utils.files import atomic_write, own
from distilkit.utils.limits import check_fits
from distilkit.utils.progress import progress_bar


class Trainer:
    def __init__(self, cfg: TrainConfig, method: Method, run_dir: Path, device: torch.device):
        self.cfg, self.method, self.run_dir, self.device = cfg, method, Path(run_dir), device
        self.weights = self.run_dir / "weights"
        self.state_path = self.weights / "last.state.pt"
        for net in method.networks().values():
            net.to(device)
            if any(p.requires_grad for p in net.parameters()):
                ddp.sync_batchnorm(net, device)  # trainable nets normalise with the global batch's statistics
        ddp.broadcast_modules(method.networks().values())
        self.optimizer = build_optimizer(method.param_groups(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
        self.scheduler = build_scheduler(
            self.optimizer, cfg.iters, cfg.warmup, cfg.schedule, cfg.power, method.lr_segments()
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
        self.step, self.best, self.history, self.last_eval = 0, -1.0, [], None
        self.imgsz = tuple(method.imgsz)
        self.live = LiveLog(self.run_dir, enabled=ddp.is_main())

    # ---- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "best": self.best,
            "networks": {k: v.state_dict() for k, v in self.method.networks().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all()},
            "method": self.method.extra_state(),
            "history": self.history,
            "last_eval": self.last_eval,
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            for name, net in self.method.networks().items():
                net.load_state_dict(state["networks"][name])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise DistilkitError(f"training state {self.state_path} does not fit this run: {e}") from None
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.method.load_extra_state(state["method"])
        self.step, self.best = state["step"], state["best"]
        self.history, self.last_eval = list(state["history"]), state["last_eval"]

    # ---- loop ----------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        cfg = self.cfg
        if resume:
            self.load_state_dict(load_state(self.state_path))
            console.print(f"resuming {self.run_dir} at step {self.step}/{cfg.iters}")
        rank, world = ddp.rank(), ddp.world_size()
        streams = {  # each rank takes its shard of every global batch of cfg.batch * world samples
            name: iter(train_loader(view, cfg.batch, cfg.workers, cfg.seed + i, self.step, rank, world))
            for i, (name, view) in enumerate(self.method.train_views().items())
        }
        for net in self.method.networks().values():
            net.train()
        window: dict[str, list[float]] = {}
        loss_text = TextColumn("{task.fields[status]}")
        plain_every = 0 if err_console.is_terminal else max(cfg.log_every, cfg.iters // 20)
        start_step, start_time, eval_s = self.step, time.perf_counter(), 0.0
        last_line = start_time
        with progress_bar(ddp.is_main(), loss_text) as bar:
            task = bar.add_task(cfg.command, total=cfg.iters, completed=self.step, unit="it", status="")
            while self.step < cfg.iters:
                batch = {k: tuple(t.to(self.device, non_blocking=True) for t in next(s)) for k, s in streams.items()}
                losses = self.train_step(batch)
                for k, v in losses.items():
                    window.setdefault(k, []).append(v)
                self.step += 1
                bar.update(task, advance=1, status=f"loss {losses['loss']:.4f}")
                now = time.perf_counter()  # logs and CI get a line instead of a bar, at least every 30 s
                if plain_every and (self.step % plain_every == 0 or now - last_line >= 30):
                    last_line, rate = now, (self.step - start_step) / (now - start_time)
                    err_console.print(f"{cfg.command} {self.step}/{cfg.iters} loss {losses['loss']:.4f} "
                                      f"{rate:.2f} it/s eta {(cfg.iters - self.step) / rate / 60:.1f} min")  # fmt: skip
                if self.step % cfg.log_every == 0 or self.step == cfg.iters:
                    self.log({k: sum(v) / len(v) for k, v in window.items()})
                    window = {}
                if self.step % cfg.val_every == 0 or self.step == cfg.iters:
                    eval_start = time.perf_counter()
                    train_s = eval_start - start_time - eval_s
                    if ddp.is_main():
                        self.validate_and_save(train_s)
                    ddp.barrier()
                    eval_s += time.perf_counter() - eval_start
        if ddp.is_main():
            self.plot()
        self.live.close()
        return self.last_eval or {}

    def train_step(self, batch: dict) -> dict[str, float]:
        with autocast(self.device, self.cfg.amp):
            losses = self.method.training_step(batch, self.step)
        logged = ddp.mean_across({k: v.detach() for k, v in losses.items()})
        if not torch.isfinite(logged["loss"]):  # the mean over ranks: every rank stops together
            raise DistilkitError(
                f"loss became {logged['loss'].item()} at step {self.step}; lower --lr, or train without --amp"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["loss"]).backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        ddp.average_gradients(params)
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.method.after_step(self.step)
        return {k: float(v) for k, v in logged.items()}

    def log(self, means: dict[str, float]) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        self.history.append({"step": self.step, "lr": lr, **means})
        self.live.scalars({**means, "lr": lr}, self.step)

    def validate_and_save(self, train_s: float = 0.0) -> None:
        """Evaluate the student, save last/best weights and the training state. `train_s`: seconds spent
        training in this process so far (evaluation excluded), reported with the results."""
        student, info = self.method.student(), self.method.info()
        results = evaluate(
            student, self.method.val_dataset(), info, self.imgsz, self.device, self.cfg.batch,
            self.cfg.workers, self.cfg.eval_mode, self.cfg.amp, show_progress=False, limit=self.cfg.val_limit,
        )  # fmt: skip
        student.train()
        self.last_eval = {k: v for k, v in results.items() if k != "confusion_matrix"}
        self.last_eval["train_time_s"] = train_s
        self.history.append({"step": self.step, "val_miou": results["miou"]})
        metrics = {"miou": results["miou"], "pixel_acc": results["pixel_acc"], "step": self.step}
        meta = model_meta(
            student, info, self.imgsz, self.cfg.method, metrics, val_data=self.method.val_dataset().info.name,
            train_data=self.cfg.data,  # the registry name: what INT8 export calibrates on by default
        )  # fmt: skip
        with uninterrupted():  # weights, state and metrics of one step: all written or none (Ctrl-C, SIGTERM)
            save_model(self.weights / "last.safetensors", student, meta)
            selects = self.method.selects_on_val
            if (selects and results["miou"] > self.best) or (not selects and self.step == self.cfg.iters):
                self.best = results["miou"]
                save_model(self.weights / "best.safetensors", student, meta)
            self.save_extra_checkpoints(info)
            save_state(self.state_path, self.state_dict())
            self.write_metrics()
        self.live.evaluation(results, self.step, self.overlays(student) if self.live.writer else [])
        note = f"best {100 * self.best:.2f}" if selects else "measured only: best.safetensors is the final model"
        # on the progress bar's console: a line printed on the other stream would leave a frozen copy of the bar
        err_console.print(f"step {self.step}/{self.cfg.iters}: val mIoU {100 * results['miou']:.2f} ({note})")

    @torch.no_grad()
    def overlays(self, student) -> list:
        """The student's predictions on the first validation images, blended over them (for live logging)."""
        from distilkit.data.transforms import normalize, to_tensor
        from distilkit.engine.inference import class_map, infer_logits
        from distilkit.engine.live import OVERLAYS
        from distilkit.engine.sources import overlay

        info, ds, out = self.method.info(), self.method.val_dataset(), []
        student.eval()
        for i in range(min(OVERLAYS, len(ds))):
            sample = ds.load_or_skip(i)
            if sample is None:
                continue
            x = normalize(to_tensor(sample[0]), info.mean, info.std)[None].to(self.device)
            label = class_map(infer_logits(student, x, self.imgsz))[0].cpu().numpy()
            out.append(overlay(sample[0], label, np.asarray(info.palette, np.uint8)))
        student.train()
        return out

    def save_extra_checkpoints(self, info) -> None:
        for name, net in self.method.extra_checkpoints().items():
            save_model(self.weights / f"{name}.safetensors", net, model_meta(net, info, self.imgsz, self.cfg.method))

    def write_metrics(self) -> None:
        keys = ["step"] + sorted({k for row in self.history for k in row} - {"step"})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write(self.run_dir / "metrics.csv", lambda p: p.write_text(buf.getvalue()))

    def plot(self) -> None:
        """loss_curve.png: every logged loss, and val mIoU on a second axis."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [r for r in self.history if "loss" in r]
        evals = [r for r in self.history if "val_miou" in r]
        if not rows:
            return
        fig, ax = plt.subplots(figsize=(7, 4))
        for key in sorted({k for r in rows for k in r} - {"step", "lr"}):
            pts = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
            ax.plot(*zip(*pts, strict=True), label=key, lw=2 if key == "loss" else 1)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.legend(loc="upper left")
        if evals:
            ax2 = ax.twinx()
            mious = [100 * r["val_miou"] for r in evals]
            ax2.plot([r["step"] for r in evals], mious, "o-", color="k", label="val mIoU")
            ax2.set_ylim(0, max(10.0, 1.2 * max(mious)))  # from 0: a 1-point dip must not look like a collapse
            ax2.set_ylabel("val mIoU (%)")
            ax2.legend(loc="upper right")
        cfg, val = self.cfg, self.method.val_dataset().info.name
        ax.set_title(f"{cfg.command}: {cfg.model} on {cfg.data} (val: {val})\n{self.run_dir}", fontsize=9)
        fig.tight_layout()
        atomic_write(self.run_dir / "loss_curve.png", lambda p: fig.savefig(p, format="png", dpi=100))
        plt.close(fig)


def run_training(
    cfg: TrainConfig | None,
    name: str = "exp",
    out: Path | None = None,
    exist_ok: bool = False,
    resume: Path | None = None,
    device: str | None = None,
    command: str | None = None,
) -> tuple:
    """What every training command does: build the method (seeded), make the run dir, fit.

    With `resume` (a run dir or a file in it), `cfg` is ignored: the run's args.json says the experiment
    and training continues from its last saved state (refused when `command` did not make the run).
    Returns (final evaluation, run dir, method).
    """
    from distilkit.engine.config import resume_config
    from distilkit.methods import build_method
    from distilkit.utils.device import seed_everything, select_device

    if resume is not None:
        cfg, run_dir = resume_config(resume, device if device != "auto" else None, command)
        own(run_dir)  # its checkpoints, state and metrics are this run's to rewrite (utils.files.WriteGuard)
    check_names(cfg.optimizer, cfg.schedule)
    dev = ddp.init_from_env(select_device(cfg.device))
    seed_everything(cfg.seed)
    method = build_method(cfg)
    check_fits(cfg.batch, *method.imgsz, training=True)  # before the run directory and the first step
    if resume is None:
        run_dir = ddp.broadcast_object(_new_run_dir(cfg, name, out, exist_ok) if ddp.is_main() else None)
        if isinstance(run_dir, str):  # rank 0 could not make it: every rank stops with its message
            raise DistilkitError(run_dir)
    console.print(styled("run directory: ", (str(run_dir), "bold")))
    results = Trainer(cfg, method, run_dir, dev).fit(resume=resume is not None)
    ddp.barrier()
    return results, run_dir, method


def _new_run_dir(cfg: TrainConfig, name: str, out: Path | None, exist_ok: bool) -> Path | str:
    """The new run directory with the experiment record in it, or the error message saying why not."""
    from distilkit.utils.files import increment_run_dir

    try:
        run_dir = increment_run_dir(cfg.command, name, out, exist_ok)
    except DistilkitError as e:
        return str(e)
    atomic_write(run_dir / "args.json", lambda p: p.write_text(cfg.to_json()))
    return run_dir
