"""Hostile files, written at test time: each names the issue-11 point it attacks.

``build_cases(folder)`` writes every file into ``folder`` and returns the cases: the CLI
arguments that open the file, and what the one-line error must mention. Files stay small on
disk (the largest is a few megabytes); what they *claim* is gigabytes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from tests.hostile.zips import (
    ZIP_DEFLATED,
    npy_bytes,
    npy_header_only,
    stored,
    write_zip,
    zeros_deflated,
)

GIB = 1 << 30


@dataclass
class Case:
    """One hostile input and how the CLI is pointed at it."""

    name: str
    point: int  # the point of issue 11 it attacks
    argv: list[str]
    mention: str  # the error line must contain this (the file, or the option)
    canary: str | None = None  # a file that must not exist afterwards
    notes: dict[str, Any] = field(default_factory=dict)


def _tiny_generator():
    from tests.conftest import make_tiny_stylegan2

    return make_tiny_stylegan2(16)


def _rosinality_state() -> dict[str, torch.Tensor]:
    generator = _tiny_generator()
    return {k: v.clone() for k, v in generator.state_dict().items() if k != "w_avg"}


def _native(path: Path, tensors: dict[str, torch.Tensor], header: Any) -> Path:
    text = header if isinstance(header, str) else json.dumps(header)
    save_file(tensors or {"x": torch.zeros(1)}, str(path), metadata={"latentstudio": text})
    return path


def _native_arch(**changes: Any) -> dict[str, Any]:
    arch = {
        "resolution": 16, "channels": [32, 32, 32], "z_dim": 32, "w_dim": 32,
        "mapping_layers": 2, "lr_mlp": 0.01, "conv_clamp": None, "architecture": "skip",
        "c_dim": 0, "embed_features": None,
    }  # fmt: skip
    arch.update(changes)
    return arch


def _header(arch: Any, kind: str = "stylegan2") -> dict[str, Any]:
    return {"schema_version": 1, "kind": kind, "architecture": arch, "name": "x"}


def _global_op(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _reduce_pickle(module: str, name: str, *args: Any) -> bytes:
    """Protocol-2 pickle of ``{'G_ema': module.name(*args)}`` written by hand."""
    body = pickle.dumps(tuple(args), protocol=2)[2:-1]  # the args tuple, without PROTO/STOP
    return b"\x80\x02}q\x00X\x05\x00\x00\x00G_emaq\x01" + _global_op(module, name) + body + b"Rs."


def _storage_bytes(declared: int, data: bytes, dtype_name: str = "FloatStorage") -> bytes:
    """torch's legacy ``torch.save(storage)`` bytes, declaring ``declared`` elements."""
    out = io.BytesIO()
    for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(value, out, protocol=2)
    out.write(
        b"\x80\x02("
        + pickle.dumps("storage", 2)[2:-1]
        + _global_op("torch", dtype_name)
        + pickle.dumps("0", 2)[2:-1]
        + pickle.dumps("cpu", 2)[2:-1]
        + pickle.dumps(declared, 2)[2:-1]
        + b"tQ."
    )
    pickle.dump(["0"], out, protocol=2)
    out.write(struct.pack("<q", declared) + data)
    return out.getvalue()


def _tensor_pickle(storage: bytes, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    """``{'G_ema': _rebuild_tensor_v2(_load_from_bytes(storage), 0, size, stride)}``."""
    load = _global_op("torch.storage", "_load_from_bytes") + pickle.dumps((storage,), 2)[2:-1]
    rest = b"".join(pickle.dumps(item, 2)[2:-1] for item in (0, size, stride))
    return (
        b"\x80\x02}X\x05\x00\x00\x00G_ema"
        + _global_op("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + load
        + b"R"
        + rest
        + b"tRs."
    )


def _nvidia(path: Path, change: Any) -> Path:
    from tests.helpers.nvidia_pickles import make_generator, write_snapshot

    generator = make_generator(8)
    change(generator)
    return write_snapshot(path, G_ema=generator)


def _session(path: Path, document_change: Any = None, **arrays: np.ndarray) -> Path:
    document = {
        "kind": "latentstudio-session", "schema_version": 1,
        "model": {"path": None, "fingerprint": None, "name": "m"}, "seed": 1,
        "truncation_psi": 0.7, "noise_mode": "const", "noise_strength": None,
        "attribute_amounts": {}, "locked": [], "component_amounts": {},
        "component_layers": None, "mix": None, "directions": None, "components": None,
    }  # fmt: skip
    if callable(document_change):
        document = document_change(document)
    text = document if isinstance(document, str) else json.dumps(document)
    with open(path, "wb") as handle:
        np.savez(handle, session=np.array(text), **arrays)
    return path


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def build_cases(folder: Path, model: Path) -> list[Case]:
    """Write the hostile files into ``folder``; ``model`` is a good tiny checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    canary = folder / "CANARY"

    def info(name: str, point: int, path: Path, **kw: Any) -> None:
        cases.append(Case(name, point, ["info", str(path)], str(path), **kw))

    def f(name: str) -> Path:
        return folder / name

    # -- 2. architecture bounds, before any network is built ---------------------------------
    small = {"x": torch.zeros(4)}
    for name, arch in (
        ("native-resolution-2^20", _native_arch(resolution=2**20, channels=[512] * 19)),
        ("native-channels-1e6", _native_arch(resolution=8, channels=[10**6, 10**6])),
        ("native-mapping-layers-1e6", _native_arch(mapping_layers=10**6)),
        ("native-z-dim-1e8", _native_arch(z_dim=10**8)),
        ("native-w-dim-0", _native_arch(w_dim=0)),
        ("native-resolution-string", _native_arch(resolution="16")),
        ("native-resolution-float", _native_arch(resolution=16.5)),
        ("native-conv-clamp-nan", _native_arch(conv_clamp=float("nan"))),
        ("native-1024px-in-16-bytes", _native_arch(resolution=1024, channels=[512] * 9)),
    ):
        info(name, 2, _native(f(name + ".safetensors"), small, _header(arch)))
    info(
        "native-progan-depths-1e5",
        2,
        _native(
            f("pg1.safetensors"), small, _header({"z_dim": 16, "depths": [10**5] * 3}, "progan")
        ),
    )
    info(
        "native-progan-40-scales",
        2,
        _native(f("pg2.safetensors"), small, _header({"z_dim": 16, "depths": [4] * 40}, "progan")),
    )
    info("native-architecture-list", 2, _native(f("al.safetensors"), small, _header([1, 2])))
    info("native-header-nested", 2, _native(f("nest.safetensors"), small, _nested(100000)))
    info("native-kind-unknown", 2, _native(f("kind.safetensors"), small, _header({}, "evil")))
    info(
        "native-schema-string",
        2,
        _native(f("schema.safetensors"), small, {**_header(_native_arch()), "schema_version": "9"}),
    )
    generator = _tiny_generator()
    weights = {k: v.clone() for k, v in generator.state_dict().items()}
    weights["conv1.conv.weight"][0, 0, 0, 0, 0] = float("nan")
    info(
        "native-nan-weights",
        5,
        _native(f("nanw.safetensors"), weights, _header(generator.architecture())),
    )
    f("sthdr.safetensors").write_bytes(struct.pack("<Q", 99_999_999) + b"{" + bytes(64))
    info("safetensors-header-claims-100MB", 2, f("sthdr.safetensors"))
    header = json.dumps({"x": {"dtype": "F32", "shape": [GIB], "data_offsets": [0, 4 * GIB]}})
    f("stoff.safetensors").write_bytes(struct.pack("<Q", len(header)) + header.encode() + bytes(8))
    info("safetensors-tensor-past-end", 2, f("stoff.safetensors"))

    state = _rosinality_state()
    zero_stride = dict(state)
    zero_stride["conv1.conv.modulation.weight"] = torch.zeros(1).expand(100_000, 100_000)
    torch.save({"g_ema": zero_stride}, f("zs.pt"))
    info("rosinality-zero-stride-1e10", 2, f("zs.pt"))
    overlap = dict(state)
    overlap["style.1.weight"] = torch.zeros(20_000).as_strided((10_000, 10_000), (1, 1))
    torch.save({"g_ema": overlap}, f("ov.pt"))
    info("rosinality-overlapping-strides", 2, f("ov.pt"))
    empty = {
        "input.input": torch.empty(1, 4096, 0, 0),
        "conv1.conv.modulation.weight": torch.empty(0, 4096),
        "conv1.conv.weight": torch.empty(1, 4096, 4096, 0, 0),
        "style.1.weight": torch.empty(0, 4096),
        "to_rgbs.0.conv.weight": torch.empty(1, 3, 4096, 0, 0),
        "convs.0.conv.weight": torch.empty(1, 4096, 4096, 0, 0),
    }
    torch.save({"g_ema": empty}, f("empty.pt"))
    info("rosinality-4096-channels-of-zero-size-tensors", 2, f("empty.pt"))
    deep = dict(state)
    for block in range(2, 31):
        deep[f"to_rgbs.{block}.conv.weight"] = torch.zeros(1, 3, 1, 1, 1)
        deep[f"convs.{2 * block}.conv.weight"] = torch.zeros(1, 1, 1, 3, 3)
    torch.save({"g_ema": deep}, f("deep.pt"))
    info("rosinality-resolution-2^32", 2, f("deep.pt"))
    torch.save({"g_ema": {"conv1.conv.modulation.weight": 5}}, f("notensor.pt"))
    info("rosinality-entries-not-tensors", 5, f("notensor.pt"))
    wide_pgan = {"formatLayer.weight": torch.empty(0, 16),
                 "groupScale0.0.weight": torch.empty(100_000, 100_000, 0, 0),
                 "toRGBLayers.0.weight": torch.empty(3, 100_000, 0, 0)}  # fmt: skip
    torch.save({"netG": wide_pgan}, f("pg.pth"))
    info("pgan-depth-1e5-zero-size", 2, f("pg.pth"))
    pgan = {
        "formatLayer.weight": torch.zeros(16 * 4, 8),
        "groupScale0.0.weight": torch.zeros(4, 4, 3, 3),
    }
    for scale in range(20):
        pgan[f"scaleLayers.{scale}.0.weight"] = torch.zeros(4, 4, 3, 3)
    pgan["toRGBLayers.0.weight"] = torch.zeros(3, 4, 1, 1)
    torch.save({"netG": pgan}, f("pgscales.pth"))
    info("pgan-21-scales", 2, f("pgscales.pth"))

    def set_attr(name: str, value: Any):
        return lambda g: setattr(g, name, value)

    info("nvidia-resolution-4096", 2, _nvidia(f("nv_res.pkl"), set_attr("img_resolution", 4096)))
    info("nvidia-z-dim-1e9", 2, _nvidia(f("nv_z.pkl"), set_attr("z_dim", 10**9)))
    info("nvidia-w-dim-0", 2, _nvidia(f("nv_w.pkl"), set_attr("w_dim", 0)))
    info("nvidia-resolution-text", 5, _nvidia(f("nv_rt.pkl"), set_attr("img_resolution", "big")))

    def wide(g: Any) -> None:
        for block in (g.synthesis.b4, g.synthesis.b8):
            block.conv1.weight = torch.nn.Parameter(torch.empty(4096, 0, 3, 3))

    info("nvidia-4096-channels-of-zero-size-tensors", 2, _nvidia(f("nv_wide.pkl"), wide))

    # -- 3. archives and declared sizes -------------------------------------------------------
    write_zip(f("bomb.npz"), [("w.npy", zeros_deflated(GIB), ZIP_DEFLATED, GIB, 0)])
    info("npz-1MB-inflating-to-1GB", 3, f("bomb.npz"))
    write_zip(f("bomb.lsession"), [("session.npy", zeros_deflated(GIB), ZIP_DEFLATED, GIB, 0)])
    info("session-1MB-inflating-to-1GB", 3, f("bomb.lsession"))
    data_pkl = pickle.dumps({"g_ema": {}}, protocol=2)
    inflating = ("archive/data/0", zeros_deflated(GIB), ZIP_DEFLATED, GIB, 0)
    write_zip(f("bomb.pt"), [stored("archive/data.pkl", data_pkl), inflating])
    info("pt-zip-member-inflating-to-1GB", 3, f("bomb.pt"))
    lying = npy_bytes(np.zeros((1, 2, 4), np.float32))
    write_zip(f("lie.npz"), [("w.npy", lying, 0, GIB, 0)])
    info("npz-member-declares-1GB-stored", 3, f("lie.npz"))
    write_zip(f("lie.pt"), [stored("archive/data.pkl", data_pkl),
                            ("archive/data/0", b"1234", 0, 4 * GIB - 1, 0)])  # fmt: skip
    info("pt-zip-member-declares-4GB-stored", 3, f("lie.pt"))
    write_zip(f("hdr.npz"), [stored("w.npy", npy_header_only((100_000, 100_000)))])
    info("npy-header-shape-1e10", 3, f("hdr.npz"))
    write_zip(f("hdrs.lsession"), [stored("session.npy", npy_header_only((), "<U1000000000"))])
    info("session-npy-header-4GB-string", 3, f("hdrs.lsession"))
    write_zip(f("obj.npz"), [stored("w.npy", npy_bytes(np.array([os.system], dtype=object)))])
    info("npz-object-array-pickle", 3, f("obj.npz"))
    pickle_legacy = io.BytesIO()
    torch.save({"g_ema": torch.zeros(2)}, pickle_legacy, _use_new_zipfile_serialization=False)
    raw = pickle_legacy.getvalue()
    f("legacy_trunc.pt").write_bytes(raw[: len(raw) - 6])
    info("legacy-torch-truncated", 3, f("legacy_trunc.pt"))

    # -- 4 and 6. pickles: refused globals (named), BUILD on classes, unpickler bounds ----------
    marker = str(canary)
    for name, module, function, args in (
        ("pickle-os-system", "os", "system", (f"touch {marker}",)),
        ("pickle-posix-system", "posix", "system", (f"touch {marker}",)),
        ("pickle-builtins-eval", "builtins", "eval", (f"open({marker!r}, 'w')",)),
        ("pickle-builtins-exec", "builtins", "exec", (f"open({marker!r}, 'w')",)),
        ("pickle-subprocess-popen", "subprocess", "Popen", (["touch", marker],)),
        ("pickle-io-open", "io", "open", (marker, "w")),
        ("pickle-shutil-rmtree", "shutil", "rmtree", (str(folder / "nothing"),)),
        ("pickle-importlib", "importlib", "import_module", ("os",)),
    ):
        f(name + ".pkl").write_bytes(_reduce_pickle(module, function, *args))
        cases.append(Case(name, 4, ["info", str(f(name + ".pkl"))], f"{module}.{function}",
                          canary=marker))  # fmt: skip
    torch_evil = f("evil.pt")
    torch.save({"g_ema": {"x": torch.zeros(1)}}, torch_evil)
    # A torch zip whose data.pkl calls os.system: torch's loader must name the global too.
    import zipfile

    with zipfile.ZipFile(torch_evil) as archive:
        members = [(i.filename, archive.read(i.filename)) for i in archive.infolist()]
    members = [(n, _reduce_pickle("os", "system", f"touch {marker}") if n.endswith("data.pkl")
                else d) for n, d in members]  # fmt: skip
    write_zip(torch_evil, [stored(n, d) for n, d in members])
    cases.append(Case("pt-zip-os-system", 4, ["info", str(torch_evil)], "os.system", marker))
    latent_evil = f("evil_latent.pt")
    write_zip(latent_evil, [stored(n, d) for n, d in members])
    cases.append(Case("latent-pt-os-system", 4, ["info", str(latent_evil)], "os.system", marker))

    build_class = (
        b"\x80\x02}X\x05\x00\x00\x00G_ema" + _global_op("dnnlib.util", "EasyDict")
        + b"N}X\x08\x00\x00\x00__init__" + _global_op("dnnlib.util", "EasyDict") + b"s\x86bs."
    )  # fmt: skip
    f("build_class.pkl").write_bytes(build_class)
    info("pickle-build-on-a-loader-class", 6, f("build_class.pkl"))
    build_function = (
        b"\x80\x02}X\x05\x00\x00\x00G_ema" + _global_op("torch._utils", "_rebuild_tensor_v2")
        + b"N}X\x0c\x00\x00\x00__defaults__(K\x01tq\x00s\x86bs."
    )  # fmt: skip
    f("build_function.pkl").write_bytes(build_function)
    info("pickle-build-on-a-loader-function", 6, f("build_function.pkl"))
    build_inert = (
        b"\x80\x02}X\x05\x00\x00\x00G_ema" + _global_op("training.networks", "Generator")
        + b"N}X\x08\x00\x00\x00qualnameX\x01\x00\x00\x00xs\x86bs."
    )  # fmt: skip
    f("build_inert.pkl").write_bytes(build_inert)
    info("pickle-build-on-an-inert-class", 6, f("build_inert.pkl"))
    shared_dtype = (
        b"\x80\x02}X\x05\x00\x00\x00G_ema" + _global_op("numpy", "dtype")
        + b"X\x02\x00\x00\x00f4\x89\x89\x87R"  # numpy.dtype('f4', False, False): shared
        + b"(K\x03X\x01\x00\x00\x00>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbs."  # big-endian
    )  # fmt: skip
    f("dtype.pkl").write_bytes(shared_dtype)
    info("pickle-rewrites-numpy-float32", 6, f("dtype.pkl"))
    f("memo.pkl").write_bytes(b"\x80\x02Nr\x00\x00\x00\x04.")
    info("pickle-memo-index-2^26", 6, f("memo.pkl"))
    f("flood.pkl").write_bytes(b"\x80\x02" + b"N0" * 1_500_000 + b"N.")
    info("pickle-3M-opcodes", 6, f("flood.pkl"))
    f("bytes8.pkl").write_bytes(b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"x")
    info("pickle-BINBYTES8-1TB", 6, f("bytes8.pkl"))
    f("frame.pkl").write_bytes(b"\x80\x04\x95" + (1 << 40).to_bytes(8, "little") + b"N.")
    info("pickle-FRAME-1TB", 6, f("frame.pkl"))
    f("nest.pkl").write_bytes(b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".")
    info("pickle-100k-nested-lists", 6, f("nest.pkl"))
    f("ndarray.pkl").write_bytes(_reduce_pickle("numpy", "ndarray", (10**6, 10**6), "f8"))
    info("pickle-ndarray-8TB", 6, f("ndarray.pkl"))
    reconstruct = (
        b"\x80\x02}X\x05\x00\x00\x00G_ema" + _global_op("numpy.core.multiarray", "_reconstruct")
        + _global_op("numpy", "ndarray") + pickle.dumps((10**6, 10**6), 2)[2:-1]
        + b"C\x01b\x87Rs."
    )  # fmt: skip
    f("reconstruct.pkl").write_bytes(reconstruct)
    info("pickle-numpy-reconstruct-1e12", 6, f("reconstruct.pkl"))
    f("odtype.pkl").write_bytes(_reduce_pickle("numpy", "dtype", "O", False, True))
    info("pickle-numpy-object-dtype", 6, f("odtype.pkl"))
    f("storage.pkl").write_bytes(_tensor_pickle(_storage_bytes(1 << 40, b"\0" * 4), (4,), (1,)))
    info("pickle-storage-declares-4TB", 6, f("storage.pkl"))
    one = _storage_bytes(1, b"\0" * 4)
    f("tzs.pkl").write_bytes(_tensor_pickle(one, (10**6, 10**6), (0, 0)))
    info("pickle-tensor-zero-stride", 6, f("tzs.pkl"))
    f("toob.pkl").write_bytes(_tensor_pickle(one, (1000,), (1,)))
    info("pickle-tensor-past-storage", 6, f("toob.pkl"))
    classes = b"".join(_global_op("training.x", f"C{i}") + b"0" for i in range(5000))
    f("classes.pkl").write_bytes(b"\x80\x02" + classes + b"N.")
    info("pickle-5000-classes", 6, f("classes.pkl"))

    def dag(g: Any) -> None:
        # G_ema is 60 levels of modules whose two children are the same module: 2**60 paths
        # for a walk that does not remember where it has been; no synthesis network.
        from tests.helpers.nvidia_pickles import Persistent

        node = Persistent()
        node.register_buffer("x", torch.zeros(1))
        for _ in range(60):
            parent = Persistent()
            parent.add_module("a", node)
            parent._modules["b"] = node
            node = parent
        del g.synthesis
        g.add_module("synthesis", node)

    info("nvidia-module-dag-2^60-paths", 6, _nvidia(f("nv_dag.pkl"), dag))

    # -- 5. values -----------------------------------------------------------------------------
    for name, w in (
        ("latent-nan", np.full((1, 6, 32), np.nan, np.float32)),
        ("latent-inf", np.full((1, 6, 32), np.inf, np.float32)),
        ("latent-int64", np.zeros((1, 6, 32), np.int64)),
        ("latent-text", np.array([["a"]])),
        ("latent-4d", np.zeros((1, 1, 6, 32), np.float32)),
        ("latent-zero-size", np.zeros((1, 0, 32), np.float32)),
        ("latent-1e5-rows", np.zeros((1, 100_000, 1), np.float32)),
    ):
        with open(f(name + ".npz"), "wb") as handle:
            np.savez(handle, w=w)
        info(name, 5, f(name + ".npz"))
    good_w = np.zeros((1, 6, 32), np.float32)
    for name, meta in (("latent-metadata-not-json", "{nope"),
                       ("latent-metadata-nested", _nested(100_000))):  # fmt: skip
        with open(f(name + ".npz"), "wb") as handle:
            np.savez(handle, w=good_w, metadata=np.array(meta))
        info(name, 5, f(name + ".npz"))
    with open(f("latent-noise-nan.npz"), "wb") as handle:
        np.savez(handle, w=good_w, noise_0=np.full((1, 1, 4, 4), np.nan, np.float32))
    info("latent-noise-nan", 5, f("latent-noise-nan.npz"))
    torch.save({"a.png": {"latent": torch.full((6, 32), float("nan"))}}, f("lnan.pt"))
    info("latent-pt-nan", 5, f("lnan.pt"))
    torch.save({"a.png": {"latent": torch.zeros(1).expand(100_000, 100_000)}}, f("lzs.pt"))
    info("latent-pt-zero-stride", 5, f("lzs.pt"))

    def doc(**changes: Any):
        return lambda d: {**d, **changes}

    for name, change, arrays in (
        ("session-nan-latent", None, {"base_ws": np.full((6, 32), np.nan, np.float32)}),
        ("session-inf-truncation", doc(truncation_psi=float("inf")), {}),
        ("session-unknown-noise-mode", doc(noise_mode="evil"), {}),
        ("session-seed-text", doc(seed="abc"), {}),
        ("session-seed-2^70", doc(seed=2**70), {}),
        ("session-amount-nan", doc(attribute_amounts={"smile": float("nan")}), {}),
        ("session-document-list", lambda d: [d], {}),
        ("session-document-nested", lambda d: _nested(100_000), {}),
        ("session-schema-text", doc(schema_version="x"), {}),
        ("session-noise-strength-text", doc(noise_strength=["a"]), {}),
        (
            "session-mix-weights-nan",
            doc(mix={"row_weights": [float("nan")], "donor": {"seed": 1}}),
            {},
        ),
        ("session-locked-number", doc(locked=5), {}),
        ("session-latent-3d", None, {"base_ws": np.zeros((1, 6, 32), np.float32)}),
        ("session-latent-int", None, {"base_ws": np.zeros((6, 32), np.int32)}),
        ("session-model-not-object", doc(model=[1]), {}),
    ):
        info(name, 5, _session(f(name + ".lsession"), change, **arrays))

    out = str(folder / "out")
    for name, extra, mention in (
        ("generate-truncation-nan", ["--truncation", "nan"], "--truncation"),
        ("generate-truncation-inf", ["--truncation", "inf"], "--truncation"),
        ("generate-seeds-1e10", ["--seeds", "0-10000000000"], "seed"),
    ):
        cases.append(Case(name, 5, ["generate", "--model", str(model), "--out", out, *extra],
                          mention))  # fmt: skip
    overflow = f("overflow.pt")
    state = _rosinality_state()
    state["input.input"] = state["input.input"] * 1e38
    torch.save({"g_ema": state, "latent_avg": torch.zeros(32)}, overflow)
    cases.append(Case("generate-model-renders-nan", 5,
                      ["generate", "--model", str(overflow), "--out", out, "--seeds", "0"],
                      str(overflow)))  # fmt: skip
    data = str(folder)
    for name, extra, mention in (
        ("train-kimg-inf", ["--kimg", "inf"], "--kimg"),
        ("train-w-dim-0", ["--w-dim", "0"], "--w-dim"),
        ("train-resolution-2^20", ["--resolution", "1048576"], "--resolution"),
        ("train-lr-nan", ["--lr", "nan"], "--lr"),
    ):
        cases.append(Case(name, 5, ["train", "stylegan2", "--data", data, "--dry-run", *extra],
                          mention))  # fmt: skip

    # -- 7. special files ----------------------------------------------------------------------
    fifo = f("model.fifo")
    os.mkfifo(fifo)
    info("model-is-a-fifo", 7, fifo)
    cases.append(Case("generate-model-is-a-fifo", 7,
                      ["generate", "--model", str(fifo), "--out", out], str(fifo)))  # fmt: skip
    photo_fifo = f("photo.png")
    os.mkfifo(photo_fifo)
    cases.append(Case("project-photo-is-a-fifo", 7,
                      ["project", str(photo_fifo), "--model", str(model), "--out", out],
                      str(photo_fifo)))  # fmt: skip
    if Path("/dev/zero").exists():
        info("model-is-dev-zero", 7, Path("/dev/zero"))
    info("model-is-a-folder", 7, folder)
    return cases
