"""Side by side with rosinality's stylegan2-pytorch: the same weights through its ``model.py``
and through ``models/stylegan2.py``, interleaved run by run on the same CPU.

Reports per row: ms per image of each, the ratio (project / original; < 1 = the project is
faster) and the largest absolute difference of the two outputs (fp32, must stay <= 1e-4).
Rows: rendering at 64/256/1024 px, batch 1 and 8; one projection step (forward + backward of
an image MSE at <= 256 px with respect to W+, the same loss on both sides); one training step
of ``train.py``'s recipe (D logistic loss, R1 every 16 steps, G non-saturating loss, path
length every 4 steps on half the batch, mixing 0.9, Adam), as images per second.

The original code is never part of this project. Get it once into a temporary folder:

    git clone https://github.com/rosinality/stylegan2-pytorch /tmp/rosinality

This script copies PATH to a temporary folder and there replaces the CUDA extension builds in
``op/fused_act.py`` and ``op/upfirdn2d.py`` (``load(...)``) by ``None``, so its CPU code runs.

    python bench/compare_original.py --original /tmp/rosinality
    python bench/compare_original.py --original /tmp/rosinality --only render --resolutions 256
"""

from __future__ import annotations

import argparse
import importlib
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCHED_FILES = ("op/fused_act.py", "op/upfirdn2d.py")


def import_original(path: Path, workdir: Path):
    """Copy the original code to ``workdir``, patch out its CUDA builds, return its ``model``."""
    if not (path / "model.py").is_file():
        raise SystemExit(f"{path}: no model.py here; pass a rosinality/stylegan2-pytorch checkout")
    copy = workdir / "rosinality"
    shutil.copytree(path, copy, ignore=shutil.ignore_patterns("*.png", "*.jpg", "*.pth", ".git"))
    for name in PATCHED_FILES:
        file = copy / name
        text = file.read_text()
        # "x = load(...)" -> "x = None and load(...)": the build never runs, x is None.
        patched = text.replace("= load(", "= None and load(")
        if patched == text:
            raise SystemExit(f"{file}: found no CUDA load(...) call to patch")
        file.write_text(patched)
    sys.path.insert(0, str(copy))
    return importlib.import_module("model")


def interleaved(
    runs: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median ms of each run, alternating them so both see the same machine load."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(t) for name, t in times.items()}


def build_pair(model, resolution: int):
    """Project generator with random weights and the original with the same state dict."""
    import torch

    from models.stylegan2 import StyleGAN2Generator, rosinality_channels

    torch.manual_seed(resolution)
    ours = StyleGAN2Generator(resolution, rosinality_channels(resolution, 2))
    with torch.no_grad():  # non-zero noise strengths, so the noise path is compared too
        for name, p in ours.named_parameters():
            if name.endswith("noise.weight"):
                p.uniform_(0.05, 0.2)
    original = model.Generator(resolution, 512, 8, channel_multiplier=2)
    state = {k: v for k, v in ours.state_dict().items() if k != "w_avg"}  # project-only buffer
    original.load_state_dict(state, strict=True)
    return ours.eval(), original.eval()


def render_rows(model, resolutions, batches, repeats_for) -> list[tuple]:
    import torch

    rows = []
    for resolution in resolutions:
        ours, original = build_pair(model, resolution)
        ours.requires_grad_(False)
        original.requires_grad_(False)
        noise = [getattr(original.noises, f"noise_{i}") for i in range(original.num_layers)]
        for batch in batches:
            torch.manual_seed(1)
            z = torch.randn(batch, 512)
            with torch.no_grad():
                ws = ours.broadcast(ours.mapping(z, truncation_psi=0.7))
            images = {}

            def run_original(ws=ws, images=images, original=original, noise=noise):
                images["original"] = original([ws], input_is_latent=True, noise=noise)[0]

            def run_ours(ws=ws, images=images, ours=ours):
                images["ours"] = ours.synthesis(ws, noise_mode="const")

            with torch.inference_mode():
                ms = interleaved(
                    {"original": run_original, "ours": run_ours}, repeats_for(resolution, batch)
                )
            diff = (images["original"] - images["ours"]).abs().max().item()
            rows.append(
                (
                    f"render {resolution}px b{batch}",
                    ms["original"] / batch,
                    ms["ours"] / batch,
                    diff,
                )
            )
            print_row(*rows[-1])
    return rows


def projection_rows(model, resolutions, repeats_for) -> list[tuple]:
    """One optimisation step of W+: forward, MSE against a target at <= 256 px, backward."""
    import torch
    import torch.nn.functional as F

    rows = []
    for resolution in resolutions:
        ours, original = build_pair(model, resolution)
        ours.requires_grad_(False)
        original.requires_grad_(False)
        noise = [getattr(original.noises, f"noise_{i}") for i in range(original.num_layers)]
        torch.manual_seed(2)
        with torch.no_grad():
            ws0 = ours.broadcast(ours.mapping(torch.randn(1, 512), truncation_psi=0.7))
            target = ours.synthesis(ours.broadcast(ours.mapping(torch.randn(1, 512))))
        size = min(resolution, 256)
        target = F.interpolate(target, size=(size, size), mode="area")
        grads: dict[str, torch.Tensor] = {}
        renders = {
            "original": lambda ws, m=original, n=noise: m([ws], input_is_latent=True, noise=n)[0],
            "ours": lambda ws, m=ours: m.synthesis(ws, noise_mode="const"),
        }

        def step(name, ws0=ws0, target=target, size=size, grads=grads, renders=renders):
            ws = ws0.clone().requires_grad_(True)
            images = renders[name](ws)
            if images.shape[-1] > size:
                images = F.interpolate(images, size=(size, size), mode="area")
            F.mse_loss(images, target).backward()
            grads[name] = ws.grad

        runs = {name: (lambda name=name: step(name)) for name in renders}
        ms = interleaved(runs, repeats_for(resolution, 1))
        scale = grads["original"].abs().max().item()
        diff = (grads["original"] - grads["ours"]).abs().max().item() / max(scale, 1e-30)
        rows.append((f"projection step {resolution}px", ms["original"], ms["ours"], diff))
        print_row(*rows[-1], diff_note="(grad, relative)")
    return rows


class TrainStep:
    """rosinality ``train.py``'s step for any (generate, D) pair; ``generate(batch)`` returns
    (images, the ws they came from), with style mixing at probability 0.9."""

    def __init__(self, generate, generator, discriminator, batch: int) -> None:
        import torch

        self.generate, self.G, self.D, self.batch = generate, generator, discriminator, batch
        g_ratio, d_ratio = 4 / 5, 16 / 17  # lazy-regularisation corrections of train.py
        self.g_opt = torch.optim.Adam(generator.parameters(), 0.002 * g_ratio, (0.0, 0.99**g_ratio))
        self.d_opt = torch.optim.Adam(
            discriminator.parameters(), 0.002 * d_ratio, (0.0, 0.99**d_ratio)
        )
        self.mean_path_length = 0.0

    def main(self, reals) -> None:
        """D logistic step, then G non-saturating step (every iteration)."""
        import torch.nn.functional as F

        G, D = self.G, self.D
        G.requires_grad_(False)
        D.requires_grad_(True)
        fakes, _ = self.generate(self.batch)
        loss = F.softplus(D(fakes)).mean() + F.softplus(-D(reals)).mean()
        D.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        G.requires_grad_(True)
        D.requires_grad_(False)
        fakes, _ = self.generate(self.batch)
        loss = F.softplus(-D(fakes)).mean()
        G.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()

    def r1(self, reals) -> None:
        """R1 penalty on reals (every 16th iteration), gamma 10."""
        import torch

        self.D.requires_grad_(True)
        reals = reals.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.D(reals).sum(), reals, create_graph=True)
        penalty = grad.square().reshape(grad.shape[0], -1).sum(1).mean()
        self.D.zero_grad(set_to_none=True)
        (10 / 2 * penalty * 16).backward()
        self.d_opt.step()

    def path_length(self) -> None:
        """Path-length penalty on half the batch (every 4th iteration), weight 2."""
        import torch

        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        fakes, ws = self.generate(max(1, self.batch // 2))
        noise = torch.randn_like(fakes) / math.sqrt(fakes.shape[2] * fakes.shape[3])
        (grad,) = torch.autograd.grad((fakes * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()
        mean = self.mean_path_length + 0.01 * (lengths.mean() - self.mean_path_length)
        penalty = (lengths - mean).square().mean()
        self.G.zero_grad(set_to_none=True)
        (2 * 4 * penalty).backward()
        self.g_opt.step()
        self.mean_path_length = mean.detach()


def train_rows(model, resolution: int, batch: int, repeats: int) -> list[tuple]:
    """img/s of the amortised step: main + R1 / 16 + path length / 4, timed separately."""
    import random

    import torch

    from models.discriminator import StyleGAN2Discriminator

    ours_g, orig_g = build_pair(model, resolution)
    ours_d = StyleGAN2Discriminator(resolution, ours_g.channels)
    orig_d = model.Discriminator(resolution, channel_multiplier=2)
    orig_d.load_state_dict(ours_d.state_dict(), strict=True)
    ours_g.train()
    orig_g.train()

    def mixed_z(n):
        if random.random() < 0.9:
            return list(torch.randn(2, n, 512).unbind(0))
        return [torch.randn(n, 512)]

    def generate_original(n):
        return orig_g(mixed_z(n), return_latents=True)

    def generate_ours(n):
        zs = mixed_z(n)
        ws = ours_g.mapping_raw(zs[0]).unsqueeze(1).repeat(1, ours_g.num_ws, 1)
        if len(zs) == 2:
            cut = random.randint(1, ours_g.num_ws - 1)
            w2 = ours_g.mapping_raw(zs[1]).unsqueeze(1).repeat(1, ours_g.num_ws - cut, 1)
            ws = torch.cat([ws[:, :cut], w2], 1)
        return ours_g.synthesis(ws, noise_mode="random"), ws

    steps = {
        "original": TrainStep(generate_original, orig_g, orig_d, batch),
        "ours": TrainStep(generate_ours, ours_g, ours_d, batch),
    }
    reals = torch.rand(batch, 3, resolution, resolution) * 2 - 1
    rows = []
    total = {"original": 0.0, "ours": 0.0}
    for part, weight in (("main", 1.0), ("r1", 1 / 16), ("path_length", 1 / 4)):

        def runner(step, part=part):
            method = getattr(step, part)
            return (lambda: method()) if part == "path_length" else (lambda: method(reals))

        ms = interleaved({name: runner(step) for name, step in steps.items()}, repeats)
        for name in total:
            total[name] += weight * ms[name]
        rows.append((f"train {resolution}px b{batch}: {part}", ms["original"], ms["ours"], None))
        print_row(*rows[-1])
    ips = {name: batch / (ms / 1000.0) for name, ms in total.items()}
    print(
        f"{'train amortised img/s':<34} {ips['original']:>12.2f} {ips['ours']:>12.2f} "
        f"{ips['ours'] / ips['original']:>7.2f}x  (img/s: higher is better)",
        flush=True,
    )
    label = f"train {resolution}px b{batch}: amortised ms/step"
    rows.append((label, total["original"], total["ours"], None))
    return rows


def print_row(label, original_ms, ours_ms, diff, diff_note="") -> None:
    diff_text = "-" if diff is None else f"{diff:.2e} {diff_note}".strip()
    print(
        f"{label:<34} {original_ms:>12.1f} {ours_ms:>12.1f} {ours_ms / original_ms:>7.2f}x  "
        f"{diff_text}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--original", type=Path, required=True, help="rosinality checkout")
    parser.add_argument("--only", choices=["render", "projection", "train"], nargs="+")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs of each side (1024 px: a third)"
    )
    parser.add_argument("--big-batch", action="store_true", help="also 1024 px at batch > 1")
    parser.add_argument("--train-resolution", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only or ["render", "projection", "train"])

    def repeats_for(resolution: int, batch: int) -> int:
        big = resolution * resolution * batch >= 1024**2
        return max(1, args.repeats // 3) if big else args.repeats

    with tempfile.TemporaryDirectory() as workdir:
        model = import_original(args.original.resolve(), Path(workdir))
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of interleaved "
            f"runs; ratio = project / original (< 1: project faster)"
        )
        print(f"{'':<34} {'original ms':>12} {'project ms':>12} {'ratio':>8}  max |diff|")
        if "render" in only:
            for resolution in args.resolutions:
                batches = [b for b in args.batches if resolution < 1024 or b == 1 or args.big_batch]
                render_rows(model, [resolution], batches, repeats_for)
        if "projection" in only:
            sizes = [r for r in args.resolutions if r >= 256] or args.resolutions
            projection_rows(model, sizes, repeats_for)
        if "train" in only:
            train_rows(model, args.train_resolution, args.train_batch, max(2, args.repeats // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
