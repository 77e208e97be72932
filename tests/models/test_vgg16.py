"""VGG16 trunk loading by torchvision key names, and the LPIPS-style distance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models.errors import CheckpointError
from models.vgg16 import (
    LPIPS_SCALE,
    LPIPS_SHIFT,
    LPIPSDistance,
    find_vgg16_weights,
    load_vgg16,
    vgg16_weights_path,
)
from tests.helpers.vgg16 import CONV_LAYERS, lpips_state, torchvision_state

# torchvision's VGG16 (configuration D): conv indices and channels, pools at 4, 9, 16, 23, 30.
POOLS = {4, 9, 16, 23, 30}


def naive_taps(state: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """relu1_2, relu2_2, relu3_3, relu4_3, relu5_3, computed layer by layer from the dict."""
    taps = []
    for index in range(30):
        if index in CONV_LAYERS:
            x = F.conv2d(
                x, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1
            )
        elif index in POOLS:
            x = F.max_pool2d(x, 2)
        else:
            x = torch.clamp(x, min=0)
            if index in (3, 8, 15, 22, 29):
                taps.append(x)
    return taps


@pytest.fixture
def weight_file(tmp_path: Path) -> Path:
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(torchvision_state(), path)
    return path


def test_loads_torchvision_layout_and_matches_naive_forward(weight_file: Path) -> None:
    trunk = load_vgg16(weight_file)
    x = torch.randn(2, 3, 48, 40, generator=torch.Generator().manual_seed(1))
    got = trunk(x)
    expected = naive_taps(torchvision_state(), x)
    assert [t.shape for t in got] == [t.shape for t in expected]
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert not any(p.requires_grad for p in trunk.parameters())


def test_lpips_distance_matches_the_formula(weight_file: Path) -> None:
    trunk = load_vgg16(weight_file)
    g = torch.Generator().manual_seed(2)
    weights = [torch.rand(c, generator=g) for c in (64, 128, 256, 512, 512)]
    distance = LPIPSDistance(trunk, weights)
    a = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    b = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    shift = torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)
    fa = naive_taps(torchvision_state(), (a - shift) / scale)
    fb = naive_taps(torchvision_state(), (b - shift) / scale)
    expected = torch.zeros(2)
    for x, y, w in zip(fa, fb, weights, strict=True):
        x = x / (x.norm(dim=1, keepdim=True) + 1e-10)
        y = y / (y.norm(dim=1, keepdim=True) + 1e-10)
        expected += ((x - y) ** 2 * w.view(1, -1, 1, 1)).sum(1).mean((1, 2))
    torch.testing.assert_close(distance(a, b), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(distance(a, a), torch.zeros(2), atol=1e-6, rtol=0)


def test_large_images_are_area_downsampled(weight_file: Path) -> None:
    distance = LPIPSDistance(load_vgg16(weight_file), max_size=32)
    a = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    b = torch.zeros(1, 3, 64, 64)
    small = LPIPSDistance(load_vgg16(weight_file), max_size=64)
    torch.testing.assert_close(
        distance(a, b), small(F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)), atol=1e-5, rtol=1e-4
    )


def test_cache_location_and_errors(tmp_path: Path) -> None:
    assert vgg16_weights_path(tmp_path) == tmp_path / "models" / "vgg16-397923af.pth"
    assert find_vgg16_weights(tmp_path) is None
    with pytest.raises(CheckpointError, match="Get models"):
        load_vgg16(tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(CheckpointError, match="not torchvision VGG16 weights"):
        load_vgg16(wrong)
    state = torchvision_state()
    state["features.28.weight"] = torch.zeros(512, 512, 1, 1)
    torch.save(state, wrong)
    with pytest.raises(CheckpointError, match=r"features\.28\.weight has the wrong shape"):
        load_vgg16(wrong)
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_vgg16(tmp_path / "junk.pth")


def test_lpips_channel_weights_read_from_the_wheel_without_importing_lpips(
    tmp_path: Path,
) -> None:
    import io
    import sys
    import zipfile

    from models.vgg16 import LPIPS_MEMBER, LPIPS_WHEEL, find_lpips_weights, load_lpips_weights

    assert find_lpips_weights(tmp_path) is None
    buffer = io.BytesIO()
    torch.save(lpips_state(), buffer)
    wheel = tmp_path / "models" / LPIPS_WHEEL
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("lpips/__init__.py", "raise RuntimeError('must not run')")
        archive.writestr(LPIPS_MEMBER, buffer.getvalue())
    assert find_lpips_weights(tmp_path) == wheel
    weights = load_lpips_weights(wheel)
    assert "lpips" not in sys.modules
    for got, (key, expected) in zip(weights, lpips_state().items(), strict=True):
        torch.testing.assert_close(got, expected.flatten(), msg=key)
    # The same weights as a plain vgg.pth file (an installed lpips package's layout).
    plain = tmp_path / "vgg.pth"
    torch.save(lpips_state(), plain)
    assert all(torch.equal(a, b) for a, b in zip(load_lpips_weights(plain), weights, strict=True))
    broken = lpips_state()
    del broken["lin3.model.1.weight"]
    torch.save(broken, plain)
    with pytest.raises(CheckpointError, match="lin3 is missing"):
        load_lpips_weights(plain)
    (tmp_path / "junk.whl").write_bytes(b"PK junk")
    with pytest.raises(CheckpointError, match="cannot read LPIPS weights"):
        load_lpips_weights(tmp_path / "junk.whl")


def test_distance_names_its_variant(weight_file: Path) -> None:
    trunk = load_vgg16(weight_file)
    assert LPIPSDistance(trunk).variant == "baseline"
    weights = [w.flatten() for w in lpips_state().values()]
    assert LPIPSDistance(trunk, weights).variant == "lpips"
