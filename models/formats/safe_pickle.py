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

The unpickler is the pure-Python one, so that no number in the stream sizes an allocation
unchecked (the C one grows its memo to whatever index ``LONG_BINPUT`` names): reads may not
run past the end of the file, the opcode count is bounded by the file's size, BUILD
(``__setstate__``) is allowed only on the objects the file itself created, never on a class or
function, and the inert classes are made afresh for each file, so a refused pickle leaves the
loader as it was.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
import torch

from models.formats.limits import product

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


_MAX_INERT_CLASSES = 4096


def _new_inert_class(qualname: str) -> type[InertObject]:
    return type(qualname.rsplit(".", 1)[-1], (InertObject,), {"qualname": qualname})


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


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    f"{name}Storage": dtype
    for name, dtype in (
        ("Float", torch.float32), ("Double", torch.float64), ("Half", torch.float16),
        ("BFloat16", torch.bfloat16), ("Long", torch.int64), ("Int", torch.int32),
        ("Short", torch.int16), ("Char", torch.int8), ("Byte", torch.uint8), ("Bool", torch.bool),
    )
}  # fmt: skip


class _StorageType:
    """What a pickled ``torch.FloatStorage`` (etc.) global stands for: its dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _StorageHeaderUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Reads the small pickles of torch's legacy format: numbers, dicts, one storage id."""

    def __init__(self, handle: BinaryIO) -> None:
        super().__init__(handle, encoding="latin1")
        self.storage_id: tuple[Any, ...] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise UnsafePickleError(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if self.storage_id is not None or not isinstance(pid, tuple) or len(pid) < 5:
            raise pickle.UnpicklingError("unexpected persistent id in a tensor storage")
        self.storage_id = pid
        return pid


def _load_storage(data: Any) -> torch.TypedStorage:
    """Rebuild a storage pickled as ``torch.save(storage)`` bytes (torch's legacy format).

    Parsed here rather than by ``torch.load``, which would allocate the element count the bytes
    declare before noticing that the data is not there.
    """
    if not isinstance(data, bytes | bytearray):
        raise pickle.UnpicklingError("tensor storage is not a byte string")
    stream = io.BytesIO(bytes(data))
    header = [_StorageHeaderUnpickler(stream).load() for _ in range(3)]
    if header[0] != _LEGACY_MAGIC or header[1] != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("tensor storage bytes are not a torch storage")
    if isinstance(header[2], dict) and header[2].get("little_endian") is False:
        raise pickle.UnpicklingError("big-endian tensor storages are not supported")
    reader = _StorageHeaderUnpickler(stream)
    reader.load()
    _StorageHeaderUnpickler(stream).load()  # the list of storage keys
    pid = reader.storage_id
    if pid is None or pid[0] != "storage" or not isinstance(pid[1], _StorageType):
        raise pickle.UnpicklingError("tensor storage bytes do not hold a storage")
    dtype = pid[1].dtype
    count_bytes = stream.read(8)
    if len(count_bytes) != 8:
        raise pickle.UnpicklingError("truncated tensor storage")
    (count,) = struct.unpack("<q", count_bytes)
    itemsize = torch.empty((), dtype=dtype).element_size()
    remaining = len(data) - stream.tell()
    if count < 0 or count * itemsize > remaining:
        raise pickle.UnpicklingError(
            f"tensor storage declares {count:,} elements but holds {remaining:,} bytes"
        )
    raw = bytearray(stream.read(count * itemsize))
    flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
    return torch.TypedStorage(wrap_storage=flat.untyped_storage(), dtype=dtype, _internal=True)


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
    if any(s > 1 and st == 0 for s, st in zip(size, stride, strict=False)):
        raise pickle.UnpicklingError(f"tensor of shape {list(size)} with a zero stride")
    itemsize = torch.empty((), dtype=dtype).element_size()
    if product(size) * itemsize > untyped.nbytes():
        raise pickle.UnpicklingError(
            f"tensor of shape {list(size)} is larger than its storage ({untyped.nbytes()} bytes)"
        )
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


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` as the argument of ``_reconstruct``; not callable."""


def _numpy_reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    # numpy pickles arrays as _reconstruct(ndarray, (0,), b'b') followed by __setstate__, whose
    # data must then match the shape; the placeholder itself is always tiny.
    if not isinstance(cls, _NdarrayClass):
        raise pickle.UnpicklingError("numpy array of an unsupported subclass")
    shape = _ints(shape, "shape")
    if product(shape) > 1024 or any(s < 0 for s in shape):
        raise pickle.UnpicklingError(f"numpy placeholder of shape {list(shape)}")
    return np.ndarray.__new__(np.ndarray, shape, typecode)


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    # Always a copy: the BUILD that follows sets its byte order, and numpy's built-in dtypes
    # are shared by the whole process.
    if not isinstance(spec, str):
        raise pickle.UnpicklingError("numpy dtype given by something other than a name")
    dtype = np.dtype(spec, align=bool(align), copy=True)
    if dtype.hasobject:
        raise pickle.UnpicklingError("numpy object arrays are refused")
    return dtype


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
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
}


# BUILD (__setstate__ or __dict__ update) is allowed on instances the file itself created.
_BUILD_TARGETS = (
    InertObject,
    EasyDict,
    PersistentObject,
    np.ndarray,
    np.dtype,
    torch.Tensor,
    collections.OrderedDict,
)


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Pure-Python unpickler resolving only the allow-list above; see the module docstring.

    Args:
        handle: the stream; reads past ``size`` bytes are refused.
        size: bytes the stream holds (the opcode budget grows with it).
        should_stop: polled every 65,536 opcodes; when true, loading raises ``InterruptedError``.
    """

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(
        self,
        handle: BinaryIO,
        size: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(_BoundedReader(handle, size), encoding="latin1")
        self._max_ops = 1_000_000 + size // 16
        self._should_stop = should_stop
        self._inert: dict[str, type[InertObject]] = {}

    def load(self) -> Any:
        """``pickle._Unpickler.load`` with an opcode budget and a stop check."""
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack: list[Any] = []
        self.stack: list[Any] = []
        self.append = self.stack.append
        self.proto = 0
        read, dispatch = self.read, self.dispatch
        count = 0
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                dispatch[key[0]](self)
                count += 1
                if count & 0xFFFF == 0:
                    if count > self._max_ops:
                        raise pickle.UnpicklingError(
                            f"more than {self._max_ops:,} pickle operations for its size"
                        )
                    if self._should_stop is not None and self._should_stop():
                        raise InterruptedError("loading stopped")
        except pickle._Stop as stop:
            return stop.value

    def load_build(self) -> None:
        target = self.stack[-2]
        if not isinstance(target, _BUILD_TARGETS) or isinstance(target, type):
            what = getattr(target, "__qualname__", type(target).__name__)
            raise pickle.UnpicklingError(f"refused BUILD (__setstate__) on {what}")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

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
        if module == "numpy" and name == "ndarray":
            return _NdarrayClass()
        if module.startswith(_INERT_PREFIXES) or module in ("tfutil", "torch_utils", "training"):
            qualname = f"{module}.{name}"
            if qualname not in self._inert:
                if len(self._inert) >= _MAX_INERT_CLASSES:
                    raise pickle.UnpicklingError("too many distinct classes in one pickle")
                self._inert[qualname] = _new_inert_class(qualname)
            return self._inert[qualname]
        raise UnsafePickleError(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not supported")


class _BoundedReader:
    """A file wrapper refusing reads longer than what is left (lengths in the stream are claims)."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._left
        if n > self._left:
            raise pickle.UnpicklingError(
                f"pickle asks for {n:,} bytes where {self._left:,} are left"
            )
        data = self._handle.read(n)
        self._left -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        if len(buffer) > self._left:
            raise pickle.UnpicklingError("pickle asks for more bytes than are left")
        count = self._handle.readinto(buffer)
        self._left -= count
        return count

    def readline(self) -> bytes:
        line = self._handle.readline(min(self._left, 1 << 20))
        self._left -= len(line)
        return line


def load(
    handle: BinaryIO, size: int | None = None, should_stop: Callable[[], bool] | None = None
) -> Any:
    """Unpickle ``handle`` with the restricted unpickler.

    Args:
        handle: the stream.
        size: bytes left in it (default: measured by seeking).
        should_stop: polled while loading; when true, ``InterruptedError`` is raised.

    Raises:
        UnsafePickleError: a global outside the allow-list (nothing was called).
        pickle.UnpicklingError, EOFError, ValueError, ...: malformed or truncated data.
    """
    if size is None:
        here = handle.tell()
        size = handle.seek(0, os.SEEK_END) - here
        handle.seek(here)
    return RestrictedUnpickler(handle, size, should_stop).load()


def load_path(path: Path, should_stop: Callable[[], bool] | None = None) -> Any:
    """``load`` from a file."""
    with Path(path).open("rb") as handle:
        return load(handle, os.fstat(handle.fileno()).st_size, should_stop)


# -- walking persistent modules -------------------------------------------------------------


_MAX_MODULES = 100_000
_MAX_DEPTH = 64


def named_tensors(module: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` for the parameters and buffers of a pickled module tree.

    Names are joined with '.' exactly as ``nn.Module.state_dict`` names them.
    """
    for name, child in named_modules(module, prefix):
        state = child.state if isinstance(child, PersistentObject | InertObject) else None
        if not isinstance(state, dict):
            continue
        for group in ("_parameters", "_buffers"):
            entries = state.get(group)
            if isinstance(entries, dict):
                for key, value in entries.items():
                    if isinstance(value, torch.Tensor):
                        yield (f"{name}." if name else prefix) + str(key), value


def named_modules(module: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(name, module)`` for a pickled module tree (the root has name '').

    Each module is visited once, so a pickle whose modules share children (or form a cycle)
    cannot make the walk exponential; deeper or larger trees than any real network are refused.

    Raises:
        pickle.UnpicklingError: more than 100,000 modules or a nesting deeper than 64.
    """
    seen: set[int] = set()
    pending = [(prefix.rstrip("."), module, 0)]
    while pending:
        name, current, depth = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if len(seen) > _MAX_MODULES or depth > _MAX_DEPTH:
            raise pickle.UnpicklingError("the module tree is larger or deeper than any network")
        yield name, current
        state = current.state if isinstance(current, PersistentObject | InertObject) else None
        children = state.get("_modules") if isinstance(state, dict) else None
        if isinstance(children, dict):
            entries = [(k, c) for k, c in children.items() if c is not None]
            for key, child in reversed(entries):
                pending.append((f"{name}.{key}" if name else str(key), child, depth + 1))
