"""GPU figures in one go (run through ``bench/device_check.sh``; see bench/README.md).

Random-weight FFHQ-layout generators (rosinality channels, multiplier 2). Prints render fps at
1024 px (fp32 and fp16, batch 1, exact image), projection steps/s at 1024 px (W+, image MSE at
256 px), drag steps/s at 1024 px when ``editors.drag`` exists, and training img/s at 256 px
(``bench/compare_original.py``'s rosinality ``train.py`` step, amortised). Without CUDA it
says so and exits 0; ``--device cpu --quick`` is the smoke test of the script itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rate(run: Callable[[], object], seconds: float, sync: Callable[[], None]) -> float:
    """Calls per second of ``run`` over about ``seconds`` (after two warm-up calls)."""
    run()
    run()
    sync()
    count, start = 0, time.perf_counter()
    while True:
        run()
        count += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="64 px and 1 s per figure (smoke)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timing window per figure")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import torch
    import torch.nn.functional as F

    from models.stylegan2 import StyleGAN2Generator, rosinality_channels

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("device_check: no CUDA GPU here; nothing measured (this is not an error)")
        return 0
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")

        def sync() -> None:
            torch.cuda.synchronize()
    else:
        print(f"device: cpu ({torch.get_num_threads()} threads), torch {torch.__version__}")

        def sync() -> None:
            pass

    big = 64 if args.quick else 1024
    train_res = 32 if args.quick else 256
    seconds = 1.0 if args.quick else args.seconds
    torch.manual_seed(0)
    G = StyleGAN2Generator(big, rosinality_channels(big, 2)).to(device).eval().requires_grad_(False)
    ws = G.broadcast(G.mapping(torch.randn(1, G.z_dim, device=device), truncation_psi=0.7))

    def show(label: str, value: float, unit: str) -> None:
        print(f"{label:<40} {value:10.1f} {unit}", flush=True)

    with torch.inference_mode():
        show(f"render {big}px fp32 batch 1", rate(lambda: G.synthesis(ws), seconds, sync), "fps")
    if device.type == "cuda":
        half = StyleGAN2Generator(big, rosinality_channels(big, 2)).to(device).half().eval()
        half.load_state_dict(G.state_dict())
        half.requires_grad_(False)
        ws_half = ws.half()
        with torch.inference_mode():
            diff = (half.synthesis(ws_half).float() - G.synthesis(ws)).abs().max().item()
            fps = rate(lambda: half.synthesis(ws_half), seconds, sync)
        show(f"render {big}px fp16 batch 1 (max|d| {diff:.3f})", fps, "fps")
        del half

    target = G.synthesis(G.broadcast(G.mapping(torch.randn(1, G.z_dim, device=device))))
    size = min(big, 256)
    target = F.interpolate(target, size=(size, size), mode="area")
    latent = ws.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=0.01)

    def projection_step() -> None:
        image = G.synthesis(latent)
        if image.shape[-1] != size:
            image = F.interpolate(image, size=(size, size), mode="area")
        loss = F.mse_loss(image, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    steps_per_s = rate(projection_step, seconds, sync)
    show(f"projection {big}px (W+, MSE at {size}px)", steps_per_s, "steps/s")

    if importlib.util.find_spec("editors.drag") is not None:
        from editors.drag import DragSettings, drag

        latent_np = ws[0].detach().float().cpu().numpy()
        point = big / 2
        steps = 3 if args.quick else 20
        settings = DragSettings(max_steps=steps, done_distance=0.01)

        def drag_run() -> None:
            drag(G, latent_np, [(point, point)], [(point + big / 8, point)], settings=settings)

        show(f"drag {big}px (steps of one drag)", rate(drag_run, seconds, sync) * steps, "steps/s")
    else:
        print("drag: editors/drag.py not present; skipped")

    from compare_original import TrainStep  # the same recipe as the CPU comparison

    from models.discriminator import StyleGAN2Discriminator

    torch.manual_seed(1)
    batch = 4 if args.quick else 16
    g_train = StyleGAN2Generator(train_res, rosinality_channels(train_res, 2)).to(device).train()
    d_train = StyleGAN2Discriminator(train_res, g_train.channels).to(device)

    def generate(n: int):
        w = g_train.mapping_raw(torch.randn(n, g_train.z_dim, device=device))
        ws_train = w.unsqueeze(1).repeat(1, g_train.num_ws, 1)
        return g_train.synthesis(ws_train, noise_mode="random"), ws_train

    step = TrainStep(generate, g_train, d_train, batch)
    reals = torch.rand(batch, 3, train_res, train_res, device=device) * 2 - 1
    ms = {}
    for part, call in (
        ("main", lambda: step.main(reals)),
        ("r1", lambda: step.r1(reals)),
        ("path_length", step.path_length),
    ):
        ms[part] = 1000.0 / rate(call, seconds / 3, sync)
    amortised = ms["main"] + ms["r1"] / 16 + ms["path_length"] / 4
    show(f"training {train_res}px batch {batch} (amortised)", batch / amortised * 1000.0, "img/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
