"""NVIDIA pickles (ADA/SG3 PyTorch and TF-era): safe loading, conversion, equivalence, errors."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

import models
from models.errors import CheckpointError
from models.formats.safe_pickle import PersistentObject, load_path
from models.stylegan2 import StyleGAN2Generator
from tests.helpers import nvidia_pickles as nv
from tests.helpers import nvidia_reference as nvref
from tests.helpers import nvidia_tf as nvtf

TOL = 1e-4


def _labels(c_dim: int, batch: int) -> torch.Tensor | None:
    if not c_dim:
        return None
    return torch.nn.functional.one_hot(torch.arange(batch) % c_dim, c_dim).float()


def _assert_matches_naive(
    path: Path,
    reference: torch.nn.Module,
    architecture: str,
    conv_clamp: float | None,
    c_dim: int = 0,
) -> StyleGAN2Generator:
    loaded = models.load_generator(path, device="cpu")
    assert isinstance(loaded, StyleGAN2Generator)
    state = nv.flat_state(reference)
    torch.manual_seed(5)
    z = torch.randn(3, loaded.z_dim)
    c = _labels(c_dim, 3)
    expected_w = nvref.naive_mapping(state, z, c)
    w = loaded.mapping(z, c=c)
    torch.testing.assert_close(w, expected_w, atol=1e-5, rtol=0)
    # A different w per row checks which style feeds which layer.
    ws = w[:, None].repeat(1, loaded.num_ws, 1) + 0.5 * torch.randn(3, loaded.num_ws, loaded.w_dim)
    expected = nvref.naive_synthesis(state, ws, architecture, conv_clamp)
    images = loaded.synthesis(ws, noise_mode="const")
    assert images.shape == expected.shape == (3, 3, loaded.resolution, loaded.resolution)
    torch.testing.assert_close(images, expected, atol=TOL, rtol=0)
    assert torch.equal(loaded.w_avg, state["mapping.w_avg"])
    return loaded


@pytest.mark.parametrize(
    "options",
    [
        {"architecture": "skip"},
        {"architecture": "skip", "conv_clamp": 256.0, "num_fp16_res": 2},
        {"architecture": "orig", "conv_clamp": 0.5},
        {"architecture": "resnet", "conv_clamp": 256.0, "num_fp16_res": 1},
        {"architecture": "skip", "c_dim": 3},
        {"architecture": "skip", "use_noise": False, "mapping_layers": 4},
        {"architecture": "skip", "channel_base": 128, "channel_max": 16, "resolution": 32},
    ],
    ids=["skip", "clamp-fp16", "orig-clamp", "resnet", "conditional", "no-noise", "res32"],
)
def test_ada_pickle_matches_nvidia_forward(tmp_path: Path, options: dict[str, Any]) -> None:
    g_ema = nv.make_generator(**options, seed=1)
    g = nv.make_generator(**options, seed=2)  # the non-averaged G must not be picked
    path = nv.write_snapshot(
        tmp_path / "network-snapshot.pkl", G=g, D=nv.make_discriminator(), G_ema=g_ema
    )
    loaded = _assert_matches_naive(
        path, g_ema, options["architecture"], options.get("conv_clamp"), options.get("c_dim", 0)
    )
    assert loaded.source is not None and loaded.source.detail.startswith("G_ema")
    assert loaded.c_dim == options.get("c_dim", 0)


def test_conv_clamp_is_engaged_in_the_clamp_case(tmp_path: Path) -> None:
    # Guards the test above: with a clamp of 0.5 the clamp really changes the image.
    g_ema = nv.make_generator(architecture="orig", conv_clamp=0.5, seed=1)
    state = nv.flat_state(g_ema)
    ws = torch.randn(1, g_ema.num_ws, 32)
    assert not torch.allclose(
        nvref.naive_synthesis(state, ws, "orig", 0.5),
        nvref.naive_synthesis(state, ws, "orig", None),
    )


@pytest.mark.parametrize("protocol", [2, 3])
def test_old_protocols_and_numpy1_names(tmp_path: Path, protocol: int) -> None:
    """Files written by Python 3.7 / numpy 1.x: text GLOBALs, numpy.core.multiarray.scalar, sets."""
    g_ema = nv.make_generator(conv_clamp=256.0, seed=3)
    path = nv.write_snapshot(
        tmp_path / "old.pkl", G=g_ema, D=None, G_ema=g_ema, protocol=protocol, numpy1_names=True
    )
    assert b"numpy.core.multiarray\nscalar" in path.read_bytes()
    _assert_matches_naive(path, g_ema, "skip", 256.0)


def test_unpickled_structure_is_inert_data(tmp_path: Path) -> None:
    g_ema = nv.make_generator(seed=1)
    path = nv.write_snapshot(tmp_path / "n.pkl", G=None, D=None, G_ema=g_ema)
    data = load_path(path)
    network = data["G_ema"]
    assert isinstance(network, PersistentObject) and network.class_name == "Generator"
    assert network.init_kwargs["synthesis_kwargs"]["channel_base"] == 256
    fc0 = network.child("mapping").child("fc0")
    assert float(fc0.attr("weight_gain")) == pytest.approx(0.01 / 32**0.5)
    assert data["training_set_kwargs"]["path"] == "/data/faces.zip"


def test_generator_without_g_ema_uses_g(tmp_path: Path) -> None:
    g = nv.make_generator(seed=4)
    path = nv.write_snapshot(tmp_path / "g_only.pkl", G=g, D=None, G_ema=None)
    loaded = _assert_matches_naive(path, g, "skip", None)
    assert loaded.source.detail.startswith("G ")


def test_native_format_round_trips_nvidia_variants(tmp_path: Path) -> None:
    g_ema = nv.make_generator(architecture="resnet", c_dim=2, conv_clamp=256.0, seed=6)
    loaded = models.load_generator(nv.write_snapshot(tmp_path / "r.pkl", G_ema=g_ema))
    saved = models.save_generator(loaded, tmp_path / "r.safetensors")
    again = models.load_generator(saved)
    assert again.architecture() == loaded.architecture()
    assert again.architecture()["architecture"] == "resnet" and again.architecture()["c_dim"] == 2
    ws = torch.randn(2, loaded.num_ws, loaded.w_dim)
    assert torch.equal(again.synthesis(ws), loaded.synthesis(ws))


def test_info_reports_the_pickle_format(tmp_path: Path) -> None:
    path = nv.write_snapshot(
        tmp_path / "n.pkl", G_ema=nv.make_generator(conv_clamp=256.0, num_fp16_res=2)
    )
    info = models.inspect_checkpoint(path)
    assert info.format_name == "NVIDIA network pickle" and str(info.container) == "pickle"
    assert "conv_clamp 256" in info.detail and "fp16" in info.detail


# -- nothing from the file runs -----------------------------------------------------------------


def test_embedded_module_source_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "module_src_ran"
    source = nv.payload_source(marker)
    exec(compile(source, "control", "exec"), {})  # control: the payload does create the marker
    assert marker.exists()
    marker.unlink()
    path = nv.write_snapshot(tmp_path / "n.pkl", G_ema=nv.make_generator(), module_src=source)
    assert source.encode() in path.read_bytes()
    models.load_generator(path)
    models.load_discriminator(path)
    assert not marker.exists()


def _payloads(marker: Path) -> dict[str, tuple[Any, Any]]:
    return {
        "os.system": (os.system, f"touch {marker}"),
        "subprocess.Popen": (subprocess.check_call, ["touch", str(marker)]),
        "builtins.exec": (builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.eval": (builtins.eval, f"open({str(marker)!r}, 'w').close()"),
    }


@pytest.mark.parametrize(
    "kind", ["os.system", "subprocess.Popen", "builtins.exec", "builtins.eval"]
)
def test_reduce_payloads_are_refused_and_not_run(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / f"{kind}_ran"
    function, argument = _payloads(marker)[kind]
    data = nv.dumps_reduce_payload(function, argument)
    pickle.loads(data)  # control: the standard unpickler runs it
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(
        CheckpointError, match=r"evil\.pkl: unsafe or unsupported pickle.*nothing from it was run"
    ) as info:
        models.load_generator(path)
    assert function.__name__ in str(info.value)
    with pytest.raises(CheckpointError, match="unsafe"):
        models.load_discriminator(path)
    assert not marker.exists()


def test_payload_hidden_beside_a_valid_network_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "mixed.pkl"
    path.write_bytes(
        nv.pickle_bytes({"G_ema": nv.make_generator(), "training_set_kwargs": {"hook": Evil()}})
    )
    with pytest.raises(
        CheckpointError, match=r"mixed\.pkl: unsafe or unsupported pickle: it asks for \w+\.system"
    ):
        models.load_generator(path)
    assert not marker.exists()


# -- unsupported content --------------------------------------------------------------------------


class _Input(nv.Persistent):
    def __init__(self) -> None:
        super().__init__()
        self.affine = nv.FullyConnectedLayer(8, 4)
        self.weight = torch.nn.Parameter(torch.randn(8, 8))


class _SG3Synthesis(nv.Persistent):
    def __init__(self) -> None:
        super().__init__()
        self.input = _Input()
        self.L0_36_8 = nv.ToRGBLayer(8, 8, 8)


class _SG3Generator(nv.Persistent):
    def __init__(self) -> None:
        super().__init__(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3)
        self.mapping = nv.MappingNetwork(8, 0, 8, 16, 2)
        self.synthesis = _SG3Synthesis()


_SG3Generator.__name__ = "Generator"


def test_stylegan3_is_refused_clearly(tmp_path: Path) -> None:
    path = nv.write_snapshot(tmp_path / "stylegan3-t.pkl", G_ema=_SG3Generator())
    with pytest.raises(
        CheckpointError, match=r"stylegan3-t\.pkl: StyleGAN3 generators are not supported"
    ):
        models.load_generator(path)


def test_discriminator_only_pickle(tmp_path: Path) -> None:
    path = nv.write_snapshot(tmp_path / "d.pkl", D=nv.make_discriminator())
    with pytest.raises(CheckpointError, match=r"d\.pkl: holds only a discriminator"):
        models.load_generator(path)
    assert models.load_discriminator(path) is not None


def test_truncated_pickle(tmp_path: Path) -> None:
    data = nv.write_snapshot(tmp_path / "full.pkl", G_ema=nv.make_generator()).read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pkl: truncated or corrupted pickle"):
        models.load_generator(path)


def test_unrelated_pickle(tmp_path: Path) -> None:
    path = tmp_path / "directions.pkl"
    path.write_bytes(pickle.dumps({"direction": [[0.0]], "name": ["smile"]}))
    with pytest.raises(
        CheckpointError, match=r"directions\.pkl: a pickle that is not a network checkpoint"
    ):
        models.load_generator(path)


# -- TF-era pickles -----------------------------------------------------------------------------


def test_tf_stylegan2_pickle_converts(tmp_path: Path) -> None:
    reference = nv.make_generator(resolution=16, seed=8)
    path = tmp_path / "stylegan2-tiny-config-f.pkl"
    path.write_bytes(nvtf.tf_generator_pickle(nv.flat_state(reference), 16, 32, 32))
    loaded = _assert_matches_naive(path, reference, "skip", None)
    assert loaded.source.format_name == "NVIDIA TensorFlow pickle"


def test_tf_progan_and_stylegan1_are_named(tmp_path: Path) -> None:
    progan = nvtf.tf_state(
        "G_paper", [("4x4/Dense/weight", torch.zeros(2, 2).numpy())], {}, "G_paper", {}
    )
    path = tmp_path / "karras2018iclr-celebahq-1024x1024.pkl"
    path.write_bytes(nvtf.tf_pickle_bytes((progan, progan, progan), module="tfutil"))
    with pytest.raises(CheckpointError, match="TensorFlow ProGAN pickle"):
        models.load_generator(path)

    synthesis = nvtf.tf_state("G_synthesis", [], {}, "G_synthesis", {})
    stylegan1 = nvtf.tf_state(
        "G", [], {"synthesis": synthesis, "mapping": synthesis}, "G_style", {}
    )
    path = tmp_path / "karras2019stylegan-ffhq-1024x1024.pkl"
    path.write_bytes(nvtf.tf_pickle_bytes((stylegan1, stylegan1, stylegan1)))
    with pytest.raises(
        CheckpointError, match=r"unsupported network \(G_synthesis\).*not StyleGAN1"
    ):
        models.load_generator(path)


# -- discriminators -------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [16, 32])
def test_ada_discriminator_converts_to_rosinality_layout(tmp_path: Path, resolution: int) -> None:
    d = nv.make_discriminator(resolution, channel_base=256, channel_max=32)
    path = nv.write_snapshot(tmp_path / "snap.pkl", G_ema=nv.make_generator(resolution), D=d)
    loaded = models.load_discriminator(path)
    assert isinstance(loaded, models.StyleGAN2Discriminator) and loaded.resolution == resolution
    torch.manual_seed(3)
    images = torch.rand(4, 3, resolution, resolution) * 2 - 1
    torch.testing.assert_close(
        loaded(images), nvref.naive_discriminator(nv.flat_state(d), images), atol=TOL, rtol=0
    )


def test_conditional_discriminator_gives_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = nv.write_snapshot(
        tmp_path / "cifar.pkl", G_ema=nv.make_generator(c_dim=2), D=nv.make_discriminator(c_dim=2)
    )
    with caplog.at_level("INFO"):
        assert models.load_discriminator(path) is None
    assert "class-conditional" in caplog.text
