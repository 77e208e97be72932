"""Strided 1x1 convolutions avoid oneDNN's faulty AVX2 kernel (models.conv) and stay exact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from models.conv import conv2d

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "size"),
    [(1, 2, 0, 8), (1, 2, 0, 7), (1, 3, 0, 9), (3, 2, 1, 8)],
)
def test_conv2d_matches_a_plain_strided_convolution(
    kernel: int, stride: int, padding: int, size: int
) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4, size, size)
    weight = torch.randn(6, 4, kernel, kernel)
    bias = torch.randn(6)
    x1 = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    w1 = weight.clone().requires_grad_()
    x2, w2 = x.clone().requires_grad_(), weight.clone().requires_grad_()
    ours = conv2d(x1, w1, bias, stride, padding)
    # Reference on NCHW float64: a different code path from the channels-last float32 one.
    ref = F.conv2d(x2.double(), w2.double(), bias.double(), stride=stride, padding=padding)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref.float(), atol=1e-5, rtol=1e-5)
    upstream = torch.randn_like(ref)
    ours.backward(upstream.float())
    ref.backward(upstream)
    torch.testing.assert_close(w1.grad, w2.grad.float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(x1.grad, x2.grad.float(), atol=1e-4, rtol=1e-4)


def test_the_failing_classifier_command_runs_five_times(tmp_path: Path) -> None:
    """The exact command that aborted natively on AVX2-only CPUs, five runs in one process."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(data / f"{i}.png")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "filename,smile,age\n" + "".join(f"{i}.png,{i % 2},{20 + i}\n" for i in range(12))
    )
    argv = [
        "train", "classifier", "--data", str(data), "--labels", str(labels), "--resolution", "8",
        "--input-size", "8", "--width", "4", "--epochs", "1", "--batch", "4", "--threads", "1",
        "--device", "cpu",
    ]  # fmt: skip
    script = (
        "import sys, main\n"
        f"argv = {argv!r}\n"
        "for run in range(5):\n"
        f"    code = main.main([*argv, '--out', {str(tmp_path)!r} + f'/cls{{run}}'])\n"
        "    assert code == 0, f'run {run} exited {code}'\n"
        "print('five runs done')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "five runs done" in done.stdout
    for run in range(5):
        assert (tmp_path / f"cls{run}" / "classifier.safetensors").is_file()
