"""Write the golden files: weights and outputs computed by the ORIGINAL implementations.

The project's equivalence tests elsewhere compare against reference code written here; these files
are the independent oracle. Each family is built with fixed seeds by its authors' code, and the
weights plus the outputs (images from z and from W+ with the stored constant noise, discriminator
logits) are stored as safetensors beside this script. ``test_golden.py`` loads the weights through
the project's own loaders and compares at 1e-4. Run by hand (never in CI), one family at a time,
each with a checkout of its original repository (nothing of it is copied into this project):

    python tests/golden/make_golden.py rosinality --original PATH/stylegan2-pytorch
    python tests/golden/make_golden.py pgan --original PATH/pytorch_GAN_zoo
    python tests/golden/make_golden.py nvidia --original PATH/stylegan2-ada-pytorch

The original's files are copied to a temporary folder and patched there, on CPU only:
rosinality's ``op/`` compiles CUDA kernels at import (``load(...)``), so those calls become
``None`` and its own CPU branches run; its channel table (512 up to 32 px) is narrowed so the files
stay small. NVIDIA's ops fall back to their reference implementations on CPU by themselves.
Weights are rounded to float16 before the outputs are computed, so storing them as float16 is
exact. This script imports nothing from the project (the zoo's package is also called
``models``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
FULL_SIZE = 64  # images up to this size are stored whole
VIEW_SIZE = 32  # larger ones as a centre crop and an average pool of this size


def output_views(name: str, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """What is stored of ``images`` [N, 3, S, S]: all of it up to 64 px, else a crop and a pool."""
    size = images.shape[-1]
    if size <= FULL_SIZE:
        return {name: images.contiguous()}
    lo = (size - VIEW_SIZE) // 2
    crop = images[:, :, lo : lo + VIEW_SIZE, lo : lo + VIEW_SIZE]
    return {
        f"{name}.crop": crop.contiguous(),
        f"{name}.pool": F.avg_pool2d(images, size // VIEW_SIZE).contiguous(),
    }


def discriminator_input(small: torch.Tensor, size: int) -> torch.Tensor:
    """The discriminator's input: a stored 16 px picture scaled up by pixel repetition."""
    return F.interpolate(small, size=(size, size), mode="nearest")


def perturb_and_round(module: torch.nn.Module, seed: int) -> None:
    """Give every parameter random values (biases, noise strengths included: the originals
    start many at 0), then round them to float16 so storing them as float16 is exact."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            scale = float(param.std()) if param.numel() > 1 and float(param.std()) > 0 else 1.0
            noise = torch.randn(param.shape, generator=generator)
            param.add_(0.3 * scale * noise)
            param.copy_(param.half().float())
        for name, buffer in module.named_buffers():
            if "noise" in name:
                buffer.copy_(buffer.half().float())


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """float16 when that is exact (the rounded parameters), else float32 (e.g. blur kernels)."""
    tensor = tensor.detach().float().contiguous()
    half = tensor.half()
    return half if torch.equal(half.float(), tensor) else tensor


def save(path: Path, weights: dict[str, torch.Tensor], outputs: dict, config: dict) -> None:
    tensors = {f"weights.{k}": _compact(v) for k, v in weights.items()}
    tensors.update({f"outputs.{k}": v.detach().float().contiguous() for k, v in outputs.items()})
    save_file(tensors, str(path), metadata={"config": json.dumps(config)})
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")


def _copy_original(original: Path, patterns: list[str]) -> Path:
    work = Path(tempfile.mkdtemp(prefix="golden-"))
    for pattern in patterns:
        for source in original.glob(pattern):
            target = work / source.relative_to(original)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    sys.path.insert(0, str(work))
    return work


def _patch(path: Path, pattern: str, replacement: str) -> None:
    text, count = re.subn(pattern, replacement, path.read_text(), flags=re.S)
    if count == 0:
        raise SystemExit(f"{path}: patch {pattern!r} found nothing (a different version?)")
    path.write_text(text)


# -- rosinality/stylegan2-pytorch --------------------------------------------------------------

ROSINALITY_CHANNELS = {4: 16, 8: 16, 16: 16, 32: 16, 64: 8, 128: 8, 256: 8, 512: 8, 1024: 8}
ROSINALITY_CONFIGS = ({"size": 32, "seed": 1}, {"size": 64, "seed": 2}, {"size": 256, "seed": 3})
STYLE_DIM = 32
N_MLP = 2


def make_rosinality(original: Path) -> None:
    work = _copy_original(original, ["model.py", "op/*.py"])
    _patch(work / "op/fused_act.py", r"fused = load\(.*?\n\)\n", "fused = None\n")
    _patch(work / "op/upfirdn2d.py", r"upfirdn2d_op = load\(.*?\n\)\n", "upfirdn2d_op = None\n")
    # Both channel tables (generator and discriminator): "4: 512," ... "1024: 16 * mult,".
    _patch(
        work / "model.py",
        r"\n(\s+)(\d+): (?:\d+ \* channel_multiplier|512),",
        r"\n\1\2: GOLDEN_CHANNELS[\2],",
    )
    model_py = work / "model.py"
    model_py.write_text(f"GOLDEN_CHANNELS = {ROSINALITY_CHANNELS!r}\n" + model_py.read_text())
    import model as rosinality  # the patched copy

    for spec in ROSINALITY_CONFIGS:
        size, seed = spec["size"], spec["seed"]
        torch.manual_seed(seed)
        g = rosinality.Generator(size, STYLE_DIM, N_MLP).eval()
        d = rosinality.Discriminator(size).eval()
        perturb_and_round(g, seed)
        perturb_and_round(d, seed + 100)
        with torch.no_grad():
            latent_avg = g.mean_latent(2000)[0].half().float()
            z = torch.randn(2, STYLE_DIM)
            img_z, _ = g([z], truncation=0.7, truncation_latent=latent_avg, randomize_noise=False)
            w_plus = g.style(torch.randn(2 * g.n_latent, STYLE_DIM)).view(2, g.n_latent, -1)
            w_plus = w_plus + 0.2 * torch.randn_like(w_plus)
            img_w, _ = g([w_plus], input_is_latent=True, randomize_noise=False)
            d_small = torch.rand(4, 3, 16, 16) * 2 - 1
            logits = d(discriminator_input(d_small, size))
        outputs = {"z": z, "w_plus": w_plus, "d_input_small": d_small, "d_logits": logits}
        outputs.update(output_views("image_z", img_z))
        outputs.update(output_views("image_w_plus", img_w))
        weights = {f"g_ema.{k}": v for k, v in g.state_dict().items()}
        weights.update({f"d.{k}": v for k, v in d.state_dict().items()})
        weights["latent_avg"] = latent_avg
        config = {"size": size, "style_dim": STYLE_DIM, "n_mlp": N_MLP, "truncation": 0.7}
        save(HERE / f"rosinality-{size}.safetensors", weights, outputs, config)


# -- facebookresearch/pytorch_GAN_zoo PGAN ----------------------------------------------------

PGAN_CONFIGS = (
    {"depths": [32, 32, 16], "z_dim": 32, "alpha": 0.0, "seed": 11},
    {"depths": [32, 32, 16, 16, 8], "z_dim": 32, "alpha": 0.4, "seed": 12},
)


def make_pgan(original: Path) -> None:
    _copy_original(original, ["models/networks/*.py", "models/utils/utils.py"])
    for init in ("models/__init__.py", "models/utils/__init__.py"):
        (Path(sys.path[0]) / init).write_text("")
    from models.networks.progressive_conv_net import GNet  # the zoo's, from the copy

    for spec in PGAN_CONFIGS:
        torch.manual_seed(spec["seed"])
        depths = spec["depths"]
        g = GNet(spec["z_dim"], depths[0], generationActivation=None).eval()
        for depth in depths[1:]:
            g.addScale(depth)
        if spec["alpha"] > 0:
            g.setNewAlpha(spec["alpha"])
        perturb_and_round(g, spec["seed"])
        with torch.no_grad():
            z = torch.randn(3, spec["z_dim"])
            images = g(z)
        size = images.shape[-1]
        outputs = {"z": z, **output_views("image_z", images)}
        config = {key: spec[key] for key in ("depths", "z_dim", "alpha")}
        save(HERE / f"pgan-{size}.safetensors", g.state_dict(), outputs, config)


# -- NVlabs/stylegan2-ada-pytorch -------------------------------------------------------------

NVIDIA_CONFIGS = (
    {"resolution": 32, "channel_base": 512, "channel_max": 16, "seed": 21},
    {"resolution": 64, "channel_base": 512, "channel_max": 16, "seed": 22},
    {"resolution": 256, "channel_base": 2048, "channel_max": 16, "seed": 23},
)
NVIDIA_W_DIM = 32
NVIDIA_MAPPING_LAYERS = 2


def make_nvidia(original: Path) -> None:
    _copy_original(original, ["dnnlib/*.py", "torch_utils/*.py", "torch_utils/ops/*.py"])
    # dnnlib.util imports requests for downloads, which are never made here.
    (Path(sys.path[0]) / "requests.py").write_text("")
    (Path(sys.path[0]) / "training").mkdir(exist_ok=True)
    shutil.copy2(original / "training/networks.py", Path(sys.path[0]) / "training/networks.py")
    (Path(sys.path[0]) / "training/__init__.py").write_text("")
    from training import networks

    for spec in NVIDIA_CONFIGS:
        res, seed = spec["resolution"], spec["seed"]
        torch.manual_seed(seed)
        widths = {"channel_base": spec["channel_base"], "channel_max": spec["channel_max"]}
        g = networks.Generator(
            z_dim=NVIDIA_W_DIM,
            c_dim=0,
            w_dim=NVIDIA_W_DIM,
            img_resolution=res,
            img_channels=3,
            mapping_kwargs={"num_layers": NVIDIA_MAPPING_LAYERS},
            synthesis_kwargs={**widths, "num_fp16_res": 0, "conv_clamp": None},
        ).eval()
        d = networks.Discriminator(
            c_dim=0, img_resolution=res, img_channels=3, **widths, num_fp16_res=0, conv_clamp=None
        ).eval()
        perturb_and_round(g, seed)
        perturb_and_round(d, seed + 100)
        with torch.no_grad():
            g.mapping.w_avg.copy_(g.mapping(torch.randn(2000, NVIDIA_W_DIM), None)[:, 0].mean(0))
            g.mapping.w_avg.copy_(g.mapping.w_avg.half().float())
            z = torch.randn(2, NVIDIA_W_DIM)
            ws = g.mapping(z, None, truncation_psi=0.7)
            img_z = g.synthesis(ws, noise_mode="const", force_fp32=True)
            w_plus = ws + 0.2 * torch.randn_like(ws)
            img_w = g.synthesis(w_plus, noise_mode="const", force_fp32=True)
            d_small = torch.rand(4, 3, 16, 16) * 2 - 1
            logits = d(discriminator_input(d_small, res), None)
        outputs = {"z": z, "w_plus": w_plus, "d_input_small": d_small, "d_logits": logits}
        outputs.update(output_views("image_z", img_z))
        outputs.update(output_views("image_w_plus", img_w))
        weights = {f"G_ema.{k}": v for k, v in g.state_dict().items()}
        weights.update({f"D.{k}": v for k, v in d.state_dict().items()})
        config = {
            **widths,
            "resolution": res,
            "z_dim": NVIDIA_W_DIM,
            "w_dim": NVIDIA_W_DIM,
            "mapping_layers": NVIDIA_MAPPING_LAYERS,
            "truncation": 0.7,
        }
        save(HERE / f"nvidia-{res}.safetensors", weights, outputs, config)


FAMILIES = {"rosinality": make_rosinality, "pgan": make_pgan, "nvidia": make_nvidia}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("--original", type=Path, required=True, help="checkout of the original")
    args = parser.parse_args()
    torch.set_num_threads(1)
    FAMILIES[args.family](args.original.resolve())


if __name__ == "__main__":
    main()
