"""SAKD's rules against hand-worked numbers and brute force, and the sakd command end to end."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

import distilkit.methods.sakd as sakd_module
from distilkit.cli import app
from distilkit.engine.config import TrainConfig
from distilkit.losses import cross_entropy, pixel_kd
from distilkit.methods import build_method
from distilkit.selection.adaptive import easiness, interrupt, interruption_rate, quality, update_alpha
from distilkit.selection.dpp import greedy_map, quality_diversity_kernel


def test_interruption_rate_schedule():
    assert interruption_rate(0, 10) == 0.0
    assert interruption_rate(5, 10) == pytest.approx(1 - 0.5**0.9)
    assert interruption_rate(10, 10) == 1.0
    rates = [interruption_rate(n, 10) for n in range(11)]
    assert rates == sorted(rates)


def tiles_changed(a: torch.Tensor, b: torch.Tensor, grid: int) -> set[int]:
    th, tw = a.shape[-2] // grid, a.shape[-1] // grid
    return {r * grid + c for r in range(grid) for c in range(grid)
            if not torch.equal(a[..., r * th:(r + 1) * th, c * tw:(c + 1) * tw],
                               b[..., r * th:(r + 1) * th, c * tw:(c + 1) * tw])}  # fmt: skip


def test_interrupt_drops_exactly_k_tiles_and_nothing_else():
    x = torch.rand(2, 3, 18, 34) + 0.5  # not divisible by 4: the remainder strips must stay untouched
    g = torch.Generator().manual_seed(0)
    out, tiles = interrupt(x, 0.3, grid=4, eta=0.5, generator=g)
    k = round(0.3 * 16)
    assert len(tiles) == k and tiles_changed(x, out, 4) == set(tiles)
    th, tw = 18 // 4, 34 // 4
    for t in tiles:
        r, c = divmod(t, 4)
        assert (out[..., r * th : (r + 1) * th, c * tw : (c + 1) * tw] == 0).all()
    assert torch.equal(out[..., 16:, :], x[..., 16:, :]) and torch.equal(out[..., :, 32:], x[..., :, 32:])
    assert torch.equal(interrupt(x, 0.0)[0], x)


def test_interrupt_shuffles_exactly_k_tiles_among_themselves():
    x = torch.rand(1, 3, 16, 16)
    out, tiles = interrupt(x, 0.6, grid=4, eta=0.5, generator=torch.Generator().manual_seed(1))
    assert len(tiles) == round(0.6 * 16) and tiles_changed(x, out, 4) == set(tiles)

    def tile(img, t):
        r, c = divmod(t, 4)
        return img[..., r * 4 : (r + 1) * 4, c * 4 : (c + 1) * 4]

    moved = sorted(tile(out, t).sum().item() for t in tiles)
    assert moved == pytest.approx(sorted(tile(x, t).sum().item() for t in tiles))  # same contents, new places


def logdet(L: torch.Tensor, subset) -> float:
    idx = list(subset)
    return torch.logdet(L[idx][:, idx]).item()


def naive_greedy(L: torch.Tensor, k: int) -> list[int]:
    """Greedy by recomputing log det for every candidate: the definition, without Cholesky updates."""
    chosen: list[int] = []
    for _ in range(k):
        rest = [j for j in range(len(L)) if j not in chosen]
        chosen.append(max(rest, key=lambda j: logdet(L, chosen + [j])))
    return chosen


def test_greedy_dpp_matches_brute_force_where_greedy_is_exact():
    torch.manual_seed(0)
    q = torch.rand(7) + 0.5
    L = torch.diag(q**2).double()  # orthogonal items: the optimum is the k best qualities, greedy finds it
    for k in (1, 3, 5):
        best = max(itertools.combinations(range(7), k), key=lambda s: logdet(L, s))
        assert set(greedy_map(L.diagonal(), L.__getitem__, k)) == set(best)
    # k = 1 is always exact
    A = torch.randn(7, 3).double()
    L = A @ A.T + 0.1 * torch.eye(7, dtype=torch.float64)
    assert greedy_map(L.diagonal(), lambda j: L[j], 1) == [int(L.diagonal().argmax())]


def test_greedy_dpp_equals_naive_greedy_and_the_submodular_bound():
    for seed in range(5):
        torch.manual_seed(seed)
        A = torch.randn(8, 5).double()
        L = torch.eye(8, dtype=torch.float64) + A @ A.T  # eigenvalues >= 1: log det is monotone submodular
        for k in (2, 3, 4):
            got = greedy_map(L.diagonal(), L.__getitem__, k)
            assert got == naive_greedy(L, k)
            opt = max(logdet(L, s) for s in itertools.combinations(range(8), k))
            assert logdet(L, got) >= (1 - 1 / math.e) * opt - 1e-9
            assert logdet(L, got) <= opt + 1e-9


def test_greedy_dpp_cost_and_rank_deficient_kernels():
    torch.manual_seed(0)
    features, q = torch.randn(50, 4), torch.rand(50) + 0.5  # rank 4, but 20 items asked for
    diag, row = quality_diversity_kernel(features, q)
    calls = []

    def counted(j):
        calls.append(j)
        return row(j)

    chosen = greedy_map(diag, counted, 20)
    assert len(chosen) == len(set(chosen)) == 20
    assert len(calls) <= 20  # at most one kernel row per selected item: O(N k) kernel work, O(N k^2) updates
    L = (q[:, None] * torch.nn.functional.normalize(features, dim=1) @ torch.nn.functional.normalize(features, dim=1).T
         * q[None]).double()  # fmt: skip
    assert torch.allclose(row(3), L[3]) and torch.allclose(diag, L.diagonal())


def test_easiness_alpha_and_quality_by_hand():
    losses, w = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0, 1.0, 0.0])
    e = easiness(losses, w)  # d = [1, 4, 4] -> e = [1, 0.25, 0.25]
    assert e.tolist() == pytest.approx([1.0, 0.25, 0.25])
    alpha = update_alpha(torch.ones(3, dtype=torch.float64), e, beta=0.5, lam=0.1)  # 0.1 + 0.9 * e^0.5
    assert alpha.tolist() == pytest.approx([1.0, 0.55, 0.55])
    alpha2 = update_alpha(alpha, e, beta=0.0, lam=0.1)  # beta 0: every sample fully distilled again
    assert alpha2.tolist() == pytest.approx([1.0, 0.955, 0.955])
    assert quality(e, gamma=0.5).tolist() == pytest.approx([math.exp(0.5), math.exp(0.125), math.exp(0.125)])


def sakd_cfg(tiny_data, teacher, **args) -> TrainConfig:
    return TrainConfig(command="t", method="sakd", data="folder", data_root=str(tiny_data), model="unet-mobilenetv2",
                       imgsz=(64, 128), batch=2, warmup=0, workers=0, device="cpu",
                       method_args={"teacher": str(teacher), "epochs": 4, **args})  # fmt: skip


def test_selection_rotates(tiny_data, tiny_ckpt, monkeypatch):
    method = build_method(sakd_cfg(tiny_data, tiny_ckpt, ratio=0.5))
    assert (method.n, method.k, method.cfg.iters) == (6, 3, 6)  # 4 epochs of 3 images, batch 2
    method.features = torch.eye(6)  # orthogonal images: the DPP keeps the best qualities
    monkeypatch.setattr(method, "difficulty", lambda epoch, beta: torch.ones(6, dtype=torch.float64))
    first, second = set(method.select(0)), set(method.select(1))
    assert len(first) == 3 and first.isdisjoint(second)  # selected ones became harder, so the others win
    assert method.times_selected.tolist() == [1.0] * 6


def test_each_epoch_visits_the_selected_set_in_a_seeded_random_order(tiny_data, tiny_ckpt, monkeypatch):
    def orders(seed: int) -> list[list[int]]:
        method = build_method(replace(sakd_cfg(tiny_data, tiny_ckpt, ratio=1.0), seed=seed))
        method.features = torch.eye(6)
        monkeypatch.setattr(method, "difficulty", lambda epoch, beta: torch.ones(6, dtype=torch.float64))
        return [method.select(e) for e in range(3)]

    monkeypatch.setattr(sakd_module, "greedy_map", lambda diag, row, k: list(range(k)))  # the DPP's set, in order
    first = orders(0)
    assert all(sorted(o) == list(range(6)) for o in first)  # exactly the selected set
    assert all(o != list(range(6)) for o in first) and first[0] != first[1]  # not the greedy order; new each epoch
    assert orders(0) == first and orders(1) != first  # fixed by --seed


def test_random_selection_is_a_seeded_uniform_subset_without_the_dpp(tiny_data, tiny_ckpt, monkeypatch):
    def fail(*_):
        raise AssertionError("--selection random must not run the DPP")

    monkeypatch.setattr(sakd_module, "greedy_map", fail)

    def selections(seed: int) -> list[list[int]]:
        method = build_method(replace(sakd_cfg(tiny_data, tiny_ckpt, ratio=0.5, selection="random"), seed=seed))
        monkeypatch.setattr(method, "difficulty", lambda epoch, beta: torch.ones(6, dtype=torch.float64))
        chosen = [method.select(e) for e in range(4)]
        assert method.times_selected.sum() == 12 and method.alpha.shape == (6,)  # alpha still adapts
        return chosen

    first = selections(0)
    assert all(len(set(c)) == 3 and set(c) <= set(range(6)) for c in first)
    assert len({frozenset(c) for c in first}) > 1  # a new subset each epoch
    assert selections(0) == first and selections(1) != first  # fixed by --seed


def test_pretrained_student_encoder(tiny_data, tiny_ckpt):
    """--pretrained loads the student's encoder from a file (here a segformer-b0 checkpoint); the head stays new."""
    from safetensors.torch import load_file

    saved = load_file(str(tiny_ckpt))

    def encoder(pretrained: str | None) -> dict:
        cfg = replace(sakd_cfg(tiny_data, tiny_ckpt), model="segformer-b0", pretrained=pretrained, seed=1)
        return {k: v for k, v in build_method(cfg).student().state_dict().items() if k.startswith("net.encoder.")}

    assert all(torch.equal(v, saved[k]) for k, v in encoder(str(tiny_ckpt)).items())
    assert not all(torch.equal(v, saved[k]) for k, v in encoder(None).items())  # a random init differs


def test_difficulty_pass_and_weighted_loss(tiny_data, tiny_ckpt):
    torch.manual_seed(0)
    method = build_method(sakd_cfg(tiny_data, tiny_ckpt, ratio=0.5))
    calls = []
    forward = method.base.teacher.forward

    def spy(x, return_features=False):
        calls.append(return_features)
        return forward(x, return_features)

    method.base.teacher.forward = spy
    chosen = method.select(0)
    method.select(1)
    assert calls.count(True) == 1 and method.features.shape == (6, 256)  # pooled teacher features: once
    assert len(chosen) == 3 and method.alpha.shape == (6,)
    # the weighted loss against per-image CE and KD computed directly
    view = method.train_views()["train"]
    items = [view[(i, i)] for i in (0, 4)]
    x, y, idx = torch.stack([t[0] for t in items]), torch.stack([t[1] for t in items]), torch.tensor([0, 4])
    method.alpha = torch.tensor([0.2, 1, 1, 1, 0.7, 1], dtype=torch.float64)
    method.student().eval()
    got = method.training_step({"train": (x, y, idx)}, 0)
    with torch.no_grad():
        s, t = method.student()(x), method.base.teacher(x)
    valid = (y != 255).float()
    ce = torch.stack([cross_entropy(s[i : i + 1], y[i : i + 1]) for i in range(2)])
    # pixel KD at its default T = 1, the temperature the difficulty pass takes from its base too
    assert method.cfg.method_args["temperature"] == method.base.cfg.method_args["temperature"] == 1.0
    kd = torch.stack([pixel_kd(s[i : i + 1], t[i : i + 1], 1.0, valid[i : i + 1]) for i in range(2)])
    a = torch.tensor([0.2, 0.7])
    assert got["loss"].item() == pytest.approx(((1 - a) * ce + a * kd).mean().item(), rel=1e-5)


@pytest.mark.parametrize("base", ["kd", "sdd", "hdl"])
def test_sakd_cli_end_to_end(tiny_data, tiny_ckpt, tmp_path, base):
    args = ["distill", "sakd", "--data", "folder", "--data-root", str(tiny_data), "--teacher", str(tiny_ckpt),
            "--student", "fastlitessnet", "--base", base, "--epochs", "2", "--ratio", "0.5", "--batch", "2",
            "--imgsz", "64", "128", "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 of 6 images selected" in result.output
    assert (tmp_path / "r/weights/last.safetensors").is_file()
    for flags in (["--ratio", "1.5"], ["--selection", "best"], ["--pretrained", str(tiny_ckpt)]):
        bad = CliRunner().invoke(app, [*args[:-2], *flags, "--out", str(tmp_path / "bad")])
        assert bad.exit_code == 1 and flags[0] in bad.stderr, bad.output  # fastlitessnet: no tensor matches b0's
        assert not (tmp_path / "bad").exists()
