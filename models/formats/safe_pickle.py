"""Restricted unpickling of NVIDIA network pickles: data comes back, no code from the file runs.

NVIDIA's ``torch_utils.persistence`` pickles every network module as a call of
``_reconstruct_persistent_obj(meta)`` whose ``meta`` carries the module's Python source, which a
plain ``pickle.load`` would ``exec``. ``load`` here resolves only an allow-list of globals:

- ``_reconstruct_persistent_obj`` becomes ``PersistentObject(meta)``, an inert record;
- tensors are rebuilt by functions written here, storages through
  ``torch.load(..., weights_only=True)`` (the form plain pickling of a tensor takes);
- ``collections.OrderedDict``, sets, numpy dtypes, scalars and arrays rebuild as data;
- ``dnnlib.util.EasyDict`` becomes a plain ``dict`` subclass;
- any other class from NVIDIA's own packages (``dnnlib``, ``training``, ``torch_utils``,
  ``metrics``) or from ``torch.nn.modules`` becomes an ``InertObject`` recording its arguments
  and state; TF-era ``dnnlib.tflib.network.Network`` / ``tfutil.Network`` included.

Every other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) is refused with
``UnsafePickleError`` before anything is called.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

# Packages whose classes may appear as inert records: NVIDIA's code (never imported here) and
# torch modules pickled whole (their state is read as data; no method of them is called).
_INERT_PREFIXES = (
    "dnnlib.",
    "training.",
    "torch_utils.",
    "metrics.",
    "tfutil",
    "torch.nn.modules.",
)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global outside the allow-list; nothing from it has run."""

    def __init__(self, module: str, name: str) -> None:
        self.global_name = f"{module}.{name}"
        super().__init__(f"refused global {self.global_name}")


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict (attribute access is not needed)."""


class InertObject:
    """A pickled object whose class is not rebuilt: its name, constructor arguments and state."""

    qualname = "?"

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None
        self.items: dict[Any, Any] = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        instance = super().__new__(cls)
        instance.args = args
        instance.state = None
        instance.items = {}
        return instance

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict subclasses pickle their items
        self.items[key] = value

    def append(self, value: Any) -> None:  # list subclasses pickle their items
        self.items[len(self.items)] = value

    def extend(self, values: Any) -> None:
        for value in values:
            self.append(value)

    def __repr__(self) -> str:
        return f"<inert {self.qualname}>"


_INERT_CLASSES: dict[str, type[InertObject]] = {}


def _inert_class(qualname: str) -> type[InertObject]:
    if qualname not in _INERT_CLASSES:
        _INERT_CLASSES[qualname] = type(
            qualname.rsplit(".", 1)[-1], (InertObject,), {"qualname": qualname}
        )
    return _INERT_CLASSES[qualname]


class PersistentObject:
    """What ``torch_utils.persistence`` pickled: class name, module source (never run), state."""

    def __init__(self, meta: Any) -> None:
        if not isinstance(meta, dict):
            raise pickle.UnpicklingError("persistent object without a meta dict")
        self.class_name = str(meta.get("class_name", "?"))
        self.module_src = meta.get("module_src") if isinstance(meta.get("module_src"), str) else ""
        self.version = meta.get("version")
        state = meta.get("state")
        self.state: dict[str, Any] = state if isinstance(state, dict) else {}

    @property
    def init_kwargs(self) -> dict[str, Any]:
        """The recorded constructor keyword arguments (``_init_kwargs``)."""
        kwargs = self.state.get("_init_kwargs")
        return dict(kwargs) if isinstance(kwargs, dict) else {}

    def attr(self, name: str, default: Any = None) -> Any:
        """A plain attribute of the pickled module (e.g. ``conv_clamp``)."""
        return self.state.get(name, default)

    def child(self, name: str) -> Any:
        """A sub-module by its attribute name, or None."""
        modules = self.state.get("_modules")
        return modules.get(name) if isinstance(modules, dict) else None

    def __repr__(self) -> str:
        return f"<persistent {self.class_name}>"


# -- rebuilders ---------------------------------------------------------------------------------


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    return PersistentObject(meta)


def _load_storage(data: Any) -> Any:
    if not isinstance(data, bytes | bytearray):
        raise pickle.UnpicklingError("tensor storage is not a byte string")
    storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.TypedStorage | torch.UntypedStorage):
        raise pickle.UnpicklingError("tensor storage bytes do not hold a storage")
    return storage


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, tuple | list) or not all(isinstance(v, int) for v in values):
        raise pickle.UnpicklingError(f"tensor {what} is not a list of integers")
    return tuple(values)


def _rebuild_tensor(
    storage: Any, offset: Any, size: Any, stride: Any, *_ignored: Any
) -> torch.Tensor:
    # Backward hooks and metadata in the file are ignored: nothing from the file may be callable.
    if not isinstance(storage, torch.TypedStorage | torch.UntypedStorage) or not isinstance(
        offset, int
    ):
        raise pickle.UnpicklingError("malformed tensor record")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if isinstance(storage, torch.TypedStorage):
        # The private field avoids TypedStorage's deprecation warning (torch's own loader uses it).
        dtype, untyped = storage.dtype, storage._untyped_storage
    else:
        dtype, untyped = torch.uint8, storage
    tensor = torch.empty((0,), dtype=dtype)
    try:
        tensor.set_(untyped, offset, size, stride)
    except RuntimeError as exc:
        raise pickle.UnpicklingError(f"tensor does not fit its storage ({exc})") from exc
    return tensor


def _rebuild_parameter(data: Any, *_ignored: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter without tensor data")
    return data


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if (
        not isinstance(dtype, np.dtype)
        or dtype.hasobject
        or not isinstance(data, bytes | bytearray)
    ):
        raise pickle.UnpicklingError("unsupported numpy scalar")
    if len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("numpy scalar of the wrong size")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _numpy_reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    # numpy pickles arrays as _reconstruct(ndarray, (0,), b'b') followed by __setstate__.
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("numpy array of an unsupported subclass")
    return np.ndarray.__new__(np.ndarray, _ints(shape, "shape"), typecode)


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unsupported _codecs.encode call")
    return text.encode("latin1")


_TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}

_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` resolving only the allow-list above; see the module docstring."""

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 files spell Python 3 names the Python 2 way (__builtin__.set, ...).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        if module.startswith(_INERT_PREFIXES) or module in ("tfutil", "torch_utils", "training"):
            return _inert_class(f"{module}.{name}")
        raise UnsafePickleError(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not supported")


def load(handle: BinaryIO) -> Any:
    """Unpickle ``handle`` with the restricted unpickler.

    Raises:
        UnsafePickleError: a global outside the allow-list (nothing was called).
        pickle.UnpicklingError, EOFError, ValueError, ...: malformed or truncated data.
    """
    # latin1 reads Python 2 strings in TF-era pickles as they were written (numpy needs bytes).
    return RestrictedUnpickler(handle, encoding="latin1").load()


def load_path(path: Path) -> Any:
    """``load`` from a file."""
    with Path(path).open("rb") as handle:
        return load(handle)


# -- walking persistent modules -------------------------------------------------------------


def named_tensors(module: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` for the parameters and buffers of a pickled module tree.

    Names are joined with '.' exactly as ``nn.Module.state_dict`` names them.
    """
    state = module.state if isinstance(module, PersistentObject | InertObject) else None
    if not isinstance(state, dict):
        return
    for group in ("_parameters", "_buffers"):
        entries = state.get(group)
        if isinstance(entries, dict):
            for name, value in entries.items():
                if isinstance(value, torch.Tensor):
                    yield prefix + str(name), value
    children = state.get("_modules")
    if isinstance(children, dict):
        for name, child in children.items():
            if child is not None:
                yield from named_tensors(child, f"{prefix}{name}.")


def named_modules(module: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(name, module)`` for a pickled module tree (the root has name '')."""
    yield prefix.rstrip("."), module
    state = module.state if isinstance(module, PersistentObject | InertObject) else None
    children = state.get("_modules") if isinstance(state, dict) else None
    if isinstance(children, dict):
        for name, child in children.items():
            if child is not None:
                yield from named_modules(child, f"{prefix}{name}.")
