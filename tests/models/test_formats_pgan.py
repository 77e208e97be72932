"""pytorch_GAN_zoo PGAN checkpoints: the layout ``BaseGAN.save`` writes, key spellings, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import models
from models.errors import CheckpointError
from models.progan import ProGANGenerator
from tests.helpers.pgan_files import fake_netd, write_pgan, zoo_config, zoo_names
from tests.helpers.progan import naive_progan, random_progan


@pytest.mark.parametrize(
    ("legacy", "strip_module", "prefix"),
    [(False, False, ""), (True, False, ""), (False, True, ""), (True, True, "module.")],
)
def test_pgan_checkpoint_prefers_avgg_and_matches_reference(
    tmp_path: Path, legacy: bool, strip_module: bool, prefix: str
) -> None:
    avg = random_progan([32, 16, 16], seed=1)
    net = random_progan([32, 16, 16], seed=2)
    path = write_pgan(
        tmp_path / "celebaHQ_s2_i80000.pth",
        avg,
        net,
        legacy=legacy,
        strip_module=strip_module,
        prefix=prefix,
    )
    loaded = models.load_generator(path, device="cpu")
    assert (
        isinstance(loaded, ProGANGenerator) and loaded.kind == "progan" and loaded.resolution == 16
    )
    z = torch.randn(3, 16)
    torch.testing.assert_close(loaded(z), naive_progan(avg.state_dict(), z), atol=1e-5, rtol=0)
    assert loaded.source.detail.startswith("avgG")
    info = models.inspect_checkpoint(path)
    assert info.format_name == "pytorch_GAN_zoo PGAN .pth"
    assert str(info.container) == ("legacy torch file" if legacy else "zip-based torch file")


def test_the_config_needs_the_allow_listed_stub(tmp_path: Path) -> None:
    # Control: a plain weights_only load refuses the zoo's config class: the stub makes it load.
    path = write_pgan(tmp_path / "p.pth", random_progan([16, 16]), None)
    with pytest.raises(Exception, match="BaseConfig"):
        torch.load(path, weights_only=True)
    assert models.load_generator(path).resolution == 8


def test_netg_only_and_fade_and_tanh_from_config(tmp_path: Path) -> None:
    net = random_progan([32, 16, 8], seed=3, alpha=0.3, output_activation="tanh")
    path = write_pgan(tmp_path / "dcgan_like.pth", None, net, loss="DCGAN")
    loaded = models.load_generator(path)
    assert loaded.architecture()["alpha"] == pytest.approx(0.3)
    assert loaded.architecture()["output_activation"] == "tanh"
    z = torch.randn(2, 16)
    torch.testing.assert_close(
        loaded(z), naive_progan(net.state_dict(), z, alpha=0.3, tanh=True), atol=1e-5, rtol=0
    )
    assert loaded.source.detail.startswith("netG")


def test_discriminator_only_pgan_file(tmp_path: Path) -> None:
    path = tmp_path / "netd.pth"
    with zoo_names():
        torch.save({"config": zoo_config([16], 8), "netD": fake_netd(16)}, path)
    with pytest.raises(CheckpointError, match=r"netd\.pth: holds only a PGAN discriminator"):
        models.load_generator(path)
    assert models.load_discriminator(path) is None


def test_config_contradicting_tensors(tmp_path: Path) -> None:
    path = write_pgan(
        tmp_path / "odd.pth",
        random_progan([32, 16]),
        None,
        config_changes={"depthOtherScales": [8]},
    )
    with pytest.raises(
        CheckpointError, match=r"odd\.pth: the config's scale depths \[32, 8\] do not match"
    ):
        models.load_generator(path)


def test_missing_tensor_is_named(tmp_path: Path) -> None:
    path = write_pgan(
        tmp_path / "cut.pth", random_progan([32, 16]), None, drop="toRGBLayers.1.module.weight"
    )
    with pytest.raises(
        CheckpointError, match=r"cut\.pth: missing tensors toRGBLayers\.1\.module\.weight"
    ):
        models.load_generator(path)


def test_code_in_the_config_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    path = write_pgan(tmp_path / "evil.pth", random_progan([16]), None, extra={"tmp": Evil()})
    with pytest.raises(CheckpointError, match=r"evil\.pth: unsafe or unsupported content"):
        models.load_generator(path)
    assert not marker.exists()
