"""Full-size checkpoints in every public layout load and render in the real window (slow).

Random weights with the exact structure of the public files: FFHQ config-f 1024 as a rosinality
``.pt`` and as an NVIDIA ADA pickle (fp16 blocks, conv_clamp 256), and a CelebA-HQ-sized 512
pytorch_GAN_zoo PGAN. Screenshots land next to the checkpoints (``--basetemp`` keeps them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models.progan import ProGANGenerator
from models.stylegan2 import StyleGAN2Generator, rosinality_channels
from tests.helpers import nvidia_pickles as nv
from tests.helpers.pgan_files import write_pgan

pytestmark = pytest.mark.slow


def rosinality_ffhq_1024(folder: Path) -> Path:
    torch.manual_seed(0)
    generator = StyleGAN2Generator(1024, rosinality_channels(1024, 2))
    generator.update_w_avg(2000)
    state = {k: v for k, v in generator.state_dict().items() if k != "w_avg"}
    path = folder / "stylegan2-ffhq-config-f.pt"
    torch.save({"g_ema": state, "latent_avg": generator.w_avg.clone()}, path)
    return path


def ada_ffhq_1024(folder: Path) -> Path:
    g_ema = nv.make_generator(
        1024,
        z_dim=512,
        w_dim=512,
        mapping_layers=8,
        channel_base=32768,
        channel_max=512,
        conv_clamp=256.0,
        num_fp16_res=4,
        seed=1,
    )
    return nv.write_snapshot(folder / "ffhq.pkl", G_ema=g_ema)


def pgan_celebahq_512(folder: Path) -> Path:
    torch.manual_seed(2)
    generator = ProGANGenerator.for_resolution(512)
    return write_pgan(folder / "celebaHQ16_december_s7_i96000-9c72988c.pth", generator, None)


@pytest.mark.parametrize(
    ("writer", "resolution", "kind", "format_name"),
    [
        (rosinality_ffhq_1024, 1024, "stylegan2", "rosinality .pt"),
        (ada_ffhq_1024, 1024, "stylegan2", "NVIDIA network pickle"),
        (pgan_celebahq_512, 512, "progan", "pytorch_GAN_zoo PGAN .pth"),
    ],
    ids=["rosinality-1024", "ada-pickle-1024", "pgan-512"],
)
def test_full_size_checkpoint_renders_in_the_window(
    qtbot,
    make_main_window,
    tmp_path: Path,
    writer: Callable[[Path], Path],
    resolution: int,
    kind: str,
    format_name: str,
) -> None:
    path = writer(tmp_path)
    window = make_main_window()
    with qtbot.waitSignal(window.session.frame_ready, timeout=120000):
        window.open_model(path)
    generator = window.session.generator
    assert (generator.kind, generator.resolution, generator.source.format_name) == (
        kind,
        resolution,
        format_name,
    )
    rgb = window.session.last_frame.result.rgb
    assert rgb.shape == (resolution, resolution, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 5  # an actual image, not a flat fill
    assert window.status_resolution.text() == f"{resolution}×{resolution}"
    window.grab().save(str(tmp_path / f"window-{kind}-{resolution}.png"))

    # A new seed renders too (the session's normal path, not just the first frame).
    with qtbot.waitSignal(window.session.frame_ready, timeout=120000):
        window.seed_spin.setValue(7)
    assert not np.array_equal(window.session.last_frame.result.rgb, rgb)
