"""Render speed and memory: ms per image and peak memory of FFHQ-layout generators (random
weights).

Each configuration runs in its own subprocess so its peak memory is its own.

    python bench/render.py                      # 64, 256, 1024 px; batch 1 and 8; CPU (+ CUDA)
    python bench/render.py --resolutions 256 --batches 1 --repeats 20
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(resolution: int, batch: int, repeats: int, device_name: str) -> dict[str, float]:
    """Time ``repeats`` renders after one warm-up; return ms per image and memory figures."""
    sys.path.insert(0, str(ROOT))
    import torch

    from models.stylegan2 import StyleGAN2Generator, rosinality_channels

    device = torch.device(device_name)
    torch.manual_seed(0)
    generator = StyleGAN2Generator(resolution, rosinality_channels(resolution, 2)).to(device).eval()
    generator.requires_grad_(False)
    rss_model_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    z = torch.randn(batch, generator.z_dim, device=device)
    times = []
    with torch.inference_mode():
        for index in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            ws = generator.broadcast(generator.mapping(z, truncation_psi=0.7))
            generator.synthesis(ws, noise_mode="const")
            if device.type == "cuda":
                torch.cuda.synchronize()
            if index > 0:  # the first call is the warm-up
                times.append((time.perf_counter() - start) * 1000.0)
    result = {
        "ms_per_image": statistics.median(times) / batch,
        "ms_per_batch": statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_rss_mb": rss_model_mb,
        "params_m": sum(p.numel() for p in generator.parameters()) / 1e6,
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=10, help="timed renders per row (median)")
    parser.add_argument(
        "--devices", nargs="+", default=None, help="default: cpu, plus cuda when present"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        resolution, batch, repeats, device = args.child.split(",")
        print(json.dumps(measure(int(resolution), int(batch), int(repeats), device)))
        return 0

    import torch

    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"repeats {args.repeats} (median)"
    )
    header = (
        f"{'device':<6} {'res':>5} {'batch':>5} {'params M':>9} {'ms/image':>10} "
        f"{'ms/batch':>10} {'peak RSS MB':>12} {'peak CUDA MB':>13}"
    )
    print(header)
    print("-" * len(header))
    for device in devices:
        for resolution in args.resolutions:
            for batch in args.batches:
                child = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        f"{resolution},{batch},{args.repeats},{device}",
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if child.returncode != 0:
                    print(
                        f"{device:<6} {resolution:>5} {batch:>5}  "
                        f"failed: {child.stderr.strip().splitlines()[-1:]}"
                    )
                    continue
                row = json.loads(child.stdout.strip().splitlines()[-1])
                cuda = f"{row['peak_cuda_mb']:.0f}" if "peak_cuda_mb" in row else "-"
                print(
                    f"{device:<6} {resolution:>5} {batch:>5} {row['params_m']:>9.1f} "
                    f"{row['ms_per_image']:>10.1f} "
                    f"{row['ms_per_batch']:>10.1f} {row['peak_rss_mb']:>12.0f} {cuda:>13}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
