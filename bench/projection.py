"""Projection quality and speed: PSNR, SSIM (and identity distance on face models) after N steps.

Targets are images the model drew from known latents, so a perfect projection exists. Runs on
CPU by default; prints a table. With no face model, the tiny random-weight StyleGAN2 of the tests
is used and identity distance is "n/a". ``--encoder`` trains a quick encoder first (a few hundred
iterations on generated samples) to show what encoder initialisation buys.

    .venv/bin/python bench/projection.py [--model PATH] [--targets 2] [--steps 100,250,500,1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from editors.projection import ProjectionConfig, project
from models.generator import Generator, to_rgb_u8


def tiny_generator(resolution: int) -> Generator:
    """The tests' tiny random StyleGAN2 (see tests/conftest.py)."""
    from tests.conftest import make_tiny_stylegan2

    return make_tiny_stylegan2(resolution)


def targets_for(generator: Generator, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image uint8 [R, R, 3], ws) pairs drawn from seeds 1000.. with psi 0.8."""
    pairs = []
    for seed in range(1000, 1000 + count):
        z = torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            ws = generator.broadcast(generator.mapping(z.to(generator.device), truncation_psi=0.8))
            pairs.append((to_rgb_u8(generator.synthesis(ws))[0], ws[0].cpu().numpy()))
    return pairs


def quick_encoder(generator: Generator, iterations: int = 400) -> torch.nn.Module:
    """A LatentEncoder fitted on generated (image, ws) pairs: enough to show the effect of init."""
    from models.encoder import LatentEncoder

    size = min(64, generator.resolution)
    encoder = LatentEncoder(generator.num_ws, generator.w_dim, input_size=size)
    encoder.w_avg.copy_(generator.w_avg)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    rng = torch.Generator().manual_seed(0)
    for _ in range(iterations):
        with torch.no_grad():
            z = torch.randn(16, generator.z_dim, generator=rng)
            ws = generator.broadcast(generator.mapping(z, truncation_psi=0.8))
            images = generator.synthesis(ws).clamp(-1, 1)
        loss = (encoder(images) - ws).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return encoder.eval()


def identity_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """dlib descriptor distance between two face images, or None when no face is found."""
    try:
        from editors.identity import IdentityMeter

        return IdentityMeter(a).distance(b)
    except (ImportError, ValueError, OSError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="checkpoint (default: tiny random 16 px and 32 px models)")
    parser.add_argument("--targets", type=int, default=2)
    parser.add_argument("--steps", default="100,250,500,1000")
    parser.add_argument("--spaces", default="w+,w")
    parser.add_argument(
        "--encoder", action="store_true", help="also run with a quick trained encoder"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from models.encoder import find_encoder_for, load_encoder

    if args.model:
        from models import load_generator

        models = [(Path(args.model).name, load_generator(args.model, "cpu"))]
    else:
        models = [(f"tiny-random-{r}", tiny_generator(r)) for r in (16, 32)]
    step_counts = [int(s) for s in args.steps.split(",")]
    print(
        f"{'model':18} {'space':5} {'init':7} {'steps':>5} {'PSNR dB':>8} {'SSIM':>6} {'identity':>8} {'s/step':>7}  loss"
    )
    for name, generator in models:
        targets = targets_for(generator, args.targets)
        inits: list[tuple[str, torch.nn.Module | None]] = [("w_avg", None)]
        if args.encoder:
            inits.append(("encoder", quick_encoder(generator)))
        trained = find_encoder_for(generator.source.path) if generator.source else None
        if trained is not None:
            inits.append(("trained", load_encoder(trained)))
        for space in args.spaces.split(","):
            for init_name, encoder in inits:
                for steps in step_counts:
                    psnrs, ssims, ids, per_step, loss_name = [], [], [], [], ""
                    for image, _ in targets:
                        config = ProjectionConfig(
                            steps=steps, space=space, init="w_avg" if encoder is None else "encoder"
                        )
                        started = time.perf_counter()
                        result = project(generator, image, config=config, encoder=encoder)
                        per_step.append((time.perf_counter() - started) / steps)
                        psnrs.append(result.psnr)
                        ssims.append(result.ssim)
                        loss_name = result.loss_name
                        distance = identity_distance(image, result.image)
                        if distance is not None:
                            ids.append(distance)
                    identity = f"{np.mean(ids):8.3f}" if ids else f"{'n/a':>8}"
                    print(
                        f"{name:18} {space:5} {init_name:7} {steps:5d} {np.mean(psnrs):8.2f} "
                        f"{np.mean(ssims):6.3f} {identity} {np.mean(per_step):7.4f}  {loss_name}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
