"""Training speed and memory: images/s and peak memory per job, preset and process layout.

Each configuration runs in fresh subprocesses (``torchrun`` for the 2-process layouts) so its
peak memory is its own. "1x2" = one process with 2 threads, "2x1" = two gloo processes with one
thread each (``torchrun --nproc_per_node 2 main.py train ... --threads 1``).

    python bench/train.py                                   # the default table (CPU, + CUDA)
    python bench/train.py --jobs stylegan2 --presets small --resolutions 64 --layouts 1x1,2x1
    python bench/train.py --learn 5 --learn-images 2000     # 5-minute tiny run on real faces

``--learn`` trains the tiny preset on UTKFace faces from ../shared/data (or --learn-data) and
prints the losses at the start and the end plus the sample grids to look at.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_CACHE = Path(tempfile.gettempdir()) / "latentstudio-bench-train"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _synthetic_folder(resolution: int, count: int = 64) -> Path:
    """Random images (content does not matter for speed)."""
    import numpy as np
    from PIL import Image

    folder = DATA_CACHE / f"synthetic-{resolution}"
    if not folder.is_dir() or len(list(folder.glob("*.png"))) < count:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(count):
            pixels = rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return folder


# ---------------------------------------------------------------------------------------------
# Children


def _child(spec: dict) -> dict:
    """Time ``spec["steps"]`` training steps after a warm-up (runs inside the measured process)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("LATENTSTUDIO_CACHE_DIR", str(DATA_CACHE / "cache"))
    import torch

    from models.runtime import resolve_device
    from models.training.distributed import init_distributed, shutdown_distributed
    from models.training.images import prepare_images

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    dist = init_distributed(resolve_device(spec["device"]))
    job, resolution = spec["job"], spec["resolution"]
    data = _synthetic_folder(resolution)
    if dist.is_main:
        prepare_images(data, resolution)
    dist.barrier()
    dataset = prepare_images(data, resolution)
    trainer, batch = _make_trainer(job, spec, dataset, dist, data)
    warmup, steps = spec["warmup"], spec["steps"]
    for step in range(warmup):
        trainer.train_step(step + 1)  # odd steps: no lazy regularisation in the warm-up
    if dist.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    dist.barrier()
    start = time.perf_counter()
    for step in range(steps):
        trainer.train_step(step)  # starts at 0: the timed window holds the lazy R1/PL steps
    if dist.device.type == "cuda":
        torch.cuda.synchronize()
    dist.barrier()
    elapsed = time.perf_counter() - start
    result = {
        "images_per_s": steps * batch / elapsed,
        "ms_per_step": elapsed / steps * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if dist.device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    shutdown_distributed()
    return result if dist.is_main else {}


def _make_trainer(job: str, spec: dict, dataset, dist, data: Path):
    resolution = spec["resolution"]
    if job == "stylegan2":
        from models.training.config import StyleGAN2Config
        from models.training.stylegan2 import StyleGAN2Trainer

        config = StyleGAN2Config.from_preset(
            spec["preset"],
            str(data),
            resolution=resolution,
            kimg=1000,
            device=spec["device"],
            channels_last=spec.get("channels_last", False),
        )
        return StyleGAN2Trainer(config, dataset, dist), config.batch_size
    if job == "progan":
        from models.training.config import ProGANConfig
        from models.training.progan import ProGANTrainer

        config = ProGANConfig(data=str(data), resolution=resolution, device=spec["device"])
        trainer = ProGANTrainer(config, dataset, dist)
        trainer.jump_to_final_phase()
        return trainer, config.batch_size
    if job == "classifier":
        import numpy as np

        from models.training.classifier import ClassifierTrainer
        from models.training.config import ClassifierConfig
        from models.training.labels import LabelReport, LabelTable

        config = ClassifierConfig(
            data=str(data),
            labels="-",
            resolution=resolution,
            input_size=resolution,
            device=spec["device"],
        )
        rng = np.random.default_rng(0)
        count = len(dataset)
        values = np.stack([rng.integers(0, 2, count), rng.normal(40, 10, count)], 1).astype(
            np.float32
        )
        table = LabelTable(
            ("binary", "value"),
            (True, False),
            np.arange(count),
            values,
            None,
            LabelReport(count, count, 0, (), 0),
        )
        return ClassifierTrainer(config, dataset, table, dist), config.batch_size
    if job == "encoder":
        from models.stylegan2 import StyleGAN2Generator, channels_from_base
        from models.training.config import STYLEGAN2_PRESETS, EncoderConfig
        from models.training.encoder import EncoderTrainer

        preset = STYLEGAN2_PRESETS[spec["preset"]]
        generator = StyleGAN2Generator(
            resolution,
            channels_from_base(resolution, preset.channel_base, preset.channel_max),
            z_dim=preset.w_dim,
            w_dim=preset.w_dim,
            mapping_layers=preset.mapping_layers,
        )
        generator.update_w_avg(1000)
        config = EncoderConfig(model="-", input_size=resolution, device=spec["device"])
        return EncoderTrainer(config, generator, None, dist), config.batch_size
    raise ValueError(f"unknown job {job}")


# ---------------------------------------------------------------------------------------------
# Parent


def run_config(spec: dict, layout: str) -> dict:
    """Run one configuration in fresh processes; return the measurements (or an error)."""
    procs, threads = (int(x) for x in layout.split("x"))
    spec = {**spec, "threads": threads}
    payload = json.dumps(spec)
    if procs == 1:
        command = [sys.executable, __file__, "--child", payload]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(procs),
            "--master_port",
            str(_free_port()),
            __file__,
            "--child",
            payload,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:80]}


def table(args: argparse.Namespace) -> None:
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        layouts = args.layouts.split(",") if device == "cpu" else ["1x0"]
        for job in args.jobs.split(","):
            presets = args.presets.split(",") if job in ("stylegan2", "encoder") else ["-"]
            for preset in presets:
                for resolution in args.resolutions:
                    for layout in layouts:
                        spec = {
                            "job": job,
                            "preset": preset,
                            "resolution": resolution,
                            "device": device,
                            "steps": args.steps,
                            "warmup": args.warmup,
                            "channels_last": args.channels_last,
                        }
                        rows.append(
                            (device, job, preset, resolution, layout, run_config(spec, layout))
                        )
                        _print_row(*rows[-1])


def _print_row(
    device: str, job: str, preset: str, resolution: int, layout: str, result: dict
) -> None:
    if not hasattr(_print_row, "header"):
        print(
            f"{'device':6} {'job':10} {'preset':7} {'res':>4} {'layout':6} {'img/s':>8} "
            f"{'ms/step':>8} {'peak RSS MB':>11} {'peak CUDA MB':>12}"
        )
        _print_row.header = True  # type: ignore[attr-defined]
    if "error" in result:
        print(f"{device:6} {job:10} {preset:7} {resolution:>4} {layout:6} error: {result['error']}")
        return
    cuda = f"{result['peak_cuda_mb']:12.0f}" if "peak_cuda_mb" in result else f"{'-':>12}"
    print(
        f"{device:6} {job:10} {preset:7} {resolution:>4} {layout:6} {result['images_per_s']:8.1f} "
        f"{result['ms_per_step']:8.0f} {result['peak_rss_mb']:11.0f} {cuda}",
        flush=True,
    )


# ---------------------------------------------------------------------------------------------
# Learning check on real faces


def learn(args: argparse.Namespace) -> None:
    """Train the tiny preset for a few minutes on real faces; print losses and sample paths."""
    source = Path(args.learn_data)
    images = sorted((source / "images").glob("*.jpg")) if (source / "images").is_dir() else []
    if not images:
        print(f"no images under {source}/images; pass --learn-data", file=sys.stderr)
        return
    subset = DATA_CACHE / f"learn-{source.name}-{args.learn_images}"
    subset.mkdir(parents=True, exist_ok=True)
    for image in images[:: max(1, len(images) // args.learn_images)][: args.learn_images]:
        link = subset / image.name
        if not link.exists():
            link.symlink_to(image)
    run_dir = DATA_CACHE / f"learn-run-{time.strftime('%Y%m%d-%H%M%S')}"
    command = [
        sys.executable,
        str(ROOT / "main.py"),
        "train",
        "stylegan2",
        "--data",
        str(subset),
        "--out",
        str(run_dir),
        "--preset",
        args.learn_preset,
        "--resolution",
        str(args.learn_resolution),
        "--kimg",
        "100000",
        "--threads",
        "1",
        "--sample-minutes",
        "1",
        "--tick-seconds",
        "15",
    ]
    if args.learn_layout == "2x1":
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),
            *command[1:],
        ]
    env = {
        **os.environ,
        "LATENTSTUDIO_CACHE_DIR": str(DATA_CACHE / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    run_dir.mkdir(parents=True)
    log_path = run_dir / "console.log"  # a file, not a pipe: nobody drains a pipe while we wait
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    sys.path.insert(0, str(ROOT))
    from models.training.runs import RunFolder

    run = RunFolder(run_dir)
    deadline = time.monotonic() + args.learn * 60
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(5)
    run.request("stop")
    process.wait(timeout=600)
    records, _ = run.read_metrics()
    if not records:
        print(f"no metrics; see {log_path}", file=sys.stderr)
        return
    keys = (
        "step",
        "kimg",
        "images_per_s",
        "loss_D",
        "loss_G",
        "score_real",
        "score_fake",
        "augment_p",
    )
    print(f"run folder: {run_dir}")
    for label, record in (
        ("first", records[0]),
        ("middle", records[len(records) // 2]),
        ("last", records[-1]),
    ):
        print(f"{label:6} " + " ".join(f"{k}={record.get(k, float('nan')):.4g}" for k in keys))
    samples = sorted(run.samples_dir.glob("*.png"))
    print(f"samples: {samples[0]} ... {samples[-1]} ({len(samples)} grids)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", default="stylegan2,progan,classifier,encoder")
    parser.add_argument("--presets", default="tiny,small", help="StyleGAN2/encoder presets")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--layouts", default="1x1,1x2,2x1", help="processes x threads on CPU")
    parser.add_argument(
        "--steps", type=int, default=16, help="timed steps (16 = one full R1 cycle)"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true", help="NHWC discriminator")
    parser.add_argument(
        "--learn", type=float, default=0.0, help="minutes of the real-face learning run"
    )
    parser.add_argument("--learn-data", default=str(ROOT.parent / "shared" / "data" / "utkface"))
    parser.add_argument("--learn-images", type=int, default=2000)
    parser.add_argument("--learn-preset", default="tiny")
    parser.add_argument("--learn-resolution", type=int, default=32)
    parser.add_argument("--learn-layout", default="2x1", choices=("1x1", "2x1"))
    args = parser.parse_args()
    if args.child:
        result = _child(json.loads(args.child))
        if result:  # only the main process reports
            print(json.dumps(result), flush=True)
        return 0
    if args.learn > 0:
        learn(args)
        return 0
    table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
