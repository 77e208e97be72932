"""Reader for dlib's DNN serialisation (what ``dlib::serialize(file) << net`` writes).

A dlib network file is not self-describing: the C++ network *type* decides what is read. So the
reader takes a ``layout``: the layer names of that type from the outermost (the loss) to the
innermost (the input layer), e.g. ``("loss_metric", "fc_no_bias", "avg_pool", ..., "con",
"input_rgb_image_sized")``, and returns the layer records in evaluation order (input first).

Facts from dlib 20.0 (``dlib/serialize.h``, ``dlib/float_details.h``, ``dlib/dnn/core.h``,
``layers.h``, ``input.h``, ``loss.h``, ``dlib/cuda/tensor.h``):

* integers: one control byte (bit 0x80 = negative, low nibble = byte count, 1..sizeof), then the
  magnitude little-endian;
* floats and doubles: a ``float_details`` = int64 mantissa then int16 exponent, both as integers
  above; the value is ``mantissa * 2**exponent`` (exponents 32000/32001/32002 = inf/-inf/nan);
* strings: an unsigned length then the bytes; bools: the ASCII byte ``'0'`` or ``'1'``;
* tensors: version 2, then num_samples, k, nr, nc, then raw little-endian float32;
* ``add_loss_layer``: version 1, loss details, subnet. ``add_layer``: version, subnet, details,
  then bookkeeping (bools and cached tensors). ``add_tag_layer``/``add_skip_layer``: version 1,
  subnet. The innermost ``add_layer`` holds the input layer in place of a subnet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.errors import CheckpointError

# float_details exponents that stand for non-finite values.
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002


# ---------------------------------------------------------------------------------------------
# Layer records (evaluation order; shapes follow dlib's NCHW tensors).


@dataclass(frozen=True, slots=True)
class InputRGB:
    """``input_rgb_image[_sized]``: ``(pixel - mean) / 256`` per channel, RGB order."""

    mean: tuple[float, float, float]  # float32 values of avg_red, avg_green, avg_blue
    rows: int | None  # fixed input size of the ``_sized`` variant, else None
    cols: int | None


@dataclass(frozen=True, slots=True)
class Conv:
    """``con_``: cross-correlation with zero padding; output ``1 + (n + 2p - k) // s``."""

    weight: npt.NDArray[np.float32]  # [out, in, kh, kw]
    bias: npt.NDArray[np.float32] | None  # [out]
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x)
    relu: bool  # con_6 can fuse a relu


@dataclass(frozen=True, slots=True)
class Affine:
    """``affine_``: ``x * gamma + beta``; per channel in conv mode, per element in fc mode."""

    gamma: npt.NDArray[np.float32]  # [k] (conv mode) or [k, nr, nc] (fc mode)
    beta: npt.NDArray[np.float32]
    conv_mode: bool


@dataclass(frozen=True, slots=True)
class Relu:
    """``relu_``."""


@dataclass(frozen=True, slots=True)
class Pool:
    """``max_pool_``/``avg_pool_``: windows clipped to the image (padding never counts).

    A window size of 0 means the whole input (``avg_pool_everything``).
    """

    kind: str  # "max" or "avg"
    size: tuple[int, int]  # (nr, nc); 0 = the input's size
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True)
class AddPrev:
    """``add_prevN``: sum with the output of the nearest ``tagN`` below (smaller zero-padded)."""

    tag: int


@dataclass(frozen=True, slots=True)
class Tag:
    """``tagN``: remembers the current output under id N."""

    tag: int


@dataclass(frozen=True, slots=True)
class Skip:
    """``skipN``: continues from the output remembered by ``tagN``."""

    tag: int


@dataclass(frozen=True, slots=True)
class Fc:
    """``fc_``: ``flatten(x) @ weight (+ bias)``."""

    weight: npt.NDArray[np.float32]  # [in, out] (dlib's layout; transpose for nn.Linear)
    bias: npt.NDArray[np.float32] | None  # [out]


@dataclass(frozen=True, slots=True)
class LossMetric:
    """``loss_metric_``: training settings only; the network's output is the fc's output."""

    margin: float
    distance_threshold: float


Layer = InputRGB | Conv | Affine | Relu | Pool | AddPrev | Tag | Skip | Fc


@dataclass(frozen=True, slots=True)
class DlibNetwork:
    """A parsed network: ``layers[0]`` is the input layer, ``layers[-1]`` feeds the loss."""

    loss: LossMetric
    layers: tuple[Layer, ...]


# ---------------------------------------------------------------------------------------------
# Primitive decoding.


class DlibStream:
    """Cursor over the bytes of a dlib-serialised object; every read checks its bounds.

    Args:
        data: the file's bytes.
        path: the file name used in error messages.
    """

    def __init__(self, data: bytes, path: str | Path = "<bytes>") -> None:
        self.data = memoryview(data)
        self.path = Path(path)
        self.pos = 0

    def error(self, what: str, problem: str) -> CheckpointError:
        """A CheckpointError naming the file, the byte offset and what was being read."""
        return CheckpointError(self.path, f"{problem} at byte {self.pos} while reading {what}")

    def take(self, count: int, what: str) -> memoryview:
        """Return the next ``count`` bytes, or raise when the file ends first."""
        if count < 0 or self.pos + count > len(self.data):
            raise self.error(
                what, f"file truncated: {count} more bytes needed, {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def _magnitude(self, what: str, signed: bool, max_bytes: int) -> int:
        control = self.take(1, what)[0]
        if signed:
            size, negative = control & 0x0F, bool(control & 0x80)
        else:
            # dlib masks unsigned control bytes with 0x8F, so a set sign bit is an error.
            size, negative = control & 0x8F, False
        if size == 0 or size > max_bytes:
            self.pos -= 1
            raise self.error(what, f"corrupt integer (control byte 0x{control:02x})")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if negative else value

    def read_int(self, what: str, max_bytes: int = 8) -> int:
        """A signed integer (``int``/``long``/``long long``/``int16``: ``max_bytes`` = sizeof)."""
        return self._magnitude(what, True, max_bytes)

    def read_uint(self, what: str, max_bytes: int = 8) -> int:
        """An unsigned integer (``unsigned long``/``size_t``)."""
        return self._magnitude(what, False, max_bytes)

    def read_float(self, what: str) -> float:
        """A float or double in dlib's portable ``float_details`` form."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.error(what, "old ASCII float encoding is not supported")
        mantissa = self.read_int(what + " (mantissa)", 8)
        exponent = self.read_int(what + " (exponent)", 2)
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent == _EXP_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def read_string(self, what: str) -> str:
        """A length-prefixed string (decoded as Latin-1, so any byte round-trips)."""
        size = self.read_uint(what + " (length)")
        return bytes(self.take(size, what)).decode("latin-1")

    def read_bool(self, what: str) -> bool:
        """A bool stored as the character '0' or '1'."""
        char = self.take(1, what)[0]
        if char not in (0x30, 0x31):
            self.pos -= 1
            raise self.error(what, f"corrupt bool (byte 0x{char:02x})")
        return char == 0x31

    def read_version(self, what: str, allowed: Sequence[int]) -> int:
        """An ``int`` version number that must be one of ``allowed``."""
        start = self.pos
        value = self.read_int(what + " version", 4)
        if value not in allowed:
            self.pos = start
            raise self.error(what, f"unexpected version {value} (expected {list(allowed)})")
        return value

    def read_record_name(self, what: str, allowed: Sequence[str]) -> str:
        """A layer's version string that must be one of ``allowed``."""
        start = self.pos
        try:
            value = self.read_string(what)
        except CheckpointError as exc:
            # A wrong guess at the layer often reads garbage as the length: say what was expected.
            raise self.error(
                what, f"expected a record {list(allowed)}, found no string ({exc.reason})"
            ) from exc
        if value not in allowed:
            self.pos = start
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise self.error(what, f"expected a record {list(allowed)}, found {shown!r}")
        return value

    def read_tensor(self, what: str) -> npt.NDArray[np.float32]:
        """A ``resizable_tensor``: returns float32 ``[num_samples, k, nr, nc]``."""
        self.read_version(what + " tensor", (2,))
        dims = tuple(self.read_int(what + " tensor shape") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.error(what, f"corrupt tensor shape {dims}")
        count = math.prod(dims)
        raw = self.take(4 * count, what + f" tensor data {dims}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def read_alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        """An ``alias_tensor`` (a shape only): ``(num_samples, k, nr, nc)``."""
        self.read_version(what + " alias_tensor", (1,))
        dims = tuple(self.read_int(what + " alias_tensor shape") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.error(what, f"corrupt alias_tensor shape {dims}")
        return dims  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Layer details.


def _read_input(stream: DlibStream, what: str) -> InputRGB:
    kind = stream.read_record_name(what, ("input_rgb_image", "input_rgb_image_sized"))
    mean = tuple(float(np.float32(stream.read_float(f"{what} mean"))) for _ in range(3))
    rows = cols = None
    if kind == "input_rgb_image_sized":
        rows = stream.read_uint(f"{what} rows")
        cols = stream.read_uint(f"{what} cols")
    return InputRGB(mean, rows, cols)  # type: ignore[arg-type]


def _params_slice(
    stream: DlibStream, params: np.ndarray, start: int, count: int, what: str
) -> np.ndarray:
    if start + count > params.size:
        raise stream.error(
            what, f"parameter tensor holds {params.size} values, {start + count} needed"
        )
    return params.reshape(-1)[start : start + count]


def _read_conv(stream: DlibStream, what: str) -> Conv:
    kind = stream.read_record_name(what, ("con_4", "con_5", "con_6"))
    params = stream.read_tensor(what + " params")
    num_filters = stream.read_int(what + " num_filters")
    nr, nc = stream.read_int(what + " nr"), stream.read_int(what + " nc")
    stride = (stream.read_int(what + " stride_y", 4), stream.read_int(what + " stride_x", 4))
    padding = (stream.read_int(what + " padding_y", 4), stream.read_int(what + " padding_x", 4))
    filters = stream.read_alias_tensor(what + " filters")
    stream.read_alias_tensor(what + " biases")
    for name in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        stream.read_float(f"{what} {name}")
    use_bias = stream.read_bool(what + " use_bias") if kind in ("con_5", "con_6") else True
    relu = stream.read_bool(what + " use_relu") if kind == "con_6" else False
    if (
        filters[0] != num_filters
        or filters[2:] != (nr, nc)
        or min(stride) < 1
        or not (0 <= padding[0] < max(nr, 1) and 0 <= padding[1] < max(nc, 1))
    ):
        raise stream.error(
            what,
            f"inconsistent conv record: filters {filters}, "
            f"num_filters {num_filters}, size {nr}x{nc}, stride {stride}, "
            f"padding {padding}",
        )
    weight_count = math.prod(filters)
    weight = _params_slice(stream, params, 0, weight_count, what).reshape(filters)
    bias = _params_slice(stream, params, weight_count, num_filters, what) if use_bias else None
    return Conv(weight.copy(), None if bias is None else bias.copy(), stride, padding, relu)


def _read_affine(stream: DlibStream, what: str) -> Affine:
    kind = stream.read_record_name(what, ("affine_", "affine_2"))
    params = stream.read_tensor(what + " params")
    gamma_shape = stream.read_alias_tensor(what + " gamma")
    stream.read_alias_tensor(what + " beta")
    mode = stream.read_int(what + " mode", 4)
    if kind == "affine_2" and stream.read_bool(what + " disabled"):
        raise stream.error(what, "disabled affine layers are not supported")
    if mode not in (0, 1):
        raise stream.error(what, f"unknown affine mode {mode}")
    count = math.prod(gamma_shape)
    if params.size != 2 * count:
        raise stream.error(what, f"affine params hold {params.size} values, {2 * count} expected")
    flat = params.reshape(-1)
    shape = (gamma_shape[1],) if mode == 0 else gamma_shape[1:]
    return Affine(
        flat[:count].reshape(shape).copy(), flat[count:].reshape(shape).copy(), conv_mode=mode == 0
    )


def _read_relu(stream: DlibStream, what: str) -> Relu:
    kind = stream.read_record_name(what, ("relu_", "relu_2"))
    if kind == "relu_2" and stream.read_bool(what + " disabled"):
        raise stream.error(what, "disabled relu layers are not supported")
    return Relu()


def _read_pool(stream: DlibStream, what: str, kind: str) -> Pool:
    stream.read_record_name(what, (f"{kind}_pool_2",))
    size = (stream.read_int(what + " nr"), stream.read_int(what + " nc"))
    stride = (stream.read_int(what + " stride_y", 4), stream.read_int(what + " stride_x", 4))
    padding = (stream.read_int(what + " padding_y", 4), stream.read_int(what + " padding_x", 4))
    # dlib requires padding < window, and no padding with a whole-input (0) window.
    bad_padding = any(p >= w if w else p != 0 for p, w in zip(padding, size, strict=True))
    if min(stride) < 1 or min(size) < 0 or min(padding) < 0 or bad_padding:
        raise stream.error(
            what, f"corrupt pool record: size {size}, stride {stride}, padding {padding}"
        )
    return Pool(kind, size, stride, padding)


def _read_fc(stream: DlibStream, what: str, has_bias: bool) -> Fc:
    kind = stream.read_record_name(what, ("fc_2", "fc_3"))
    num_outputs = stream.read_uint(what + " num_outputs")
    num_inputs = stream.read_uint(what + " num_inputs")
    params = stream.read_tensor(what + " params")
    stream.read_alias_tensor(what + " weights")
    stream.read_alias_tensor(what + " biases")
    bias_mode = stream.read_int(what + " bias_mode", 4)
    for name in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        stream.read_float(f"{what} {name}")
    use_bias = stream.read_bool(what + " use_bias") if kind == "fc_3" else True
    # bias_mode 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS (dlib's fc_bias_mode).
    if bias_mode != (0 if has_bias else 1):
        raise stream.error(
            what,
            f"bias mode {bias_mode} does not match the layout's "
            f"{'fc' if has_bias else 'fc_no_bias'}",
        )
    weight = _params_slice(stream, params, 0, num_inputs * num_outputs, what)
    bias = None
    if has_bias and use_bias:
        bias = _params_slice(stream, params, num_inputs * num_outputs, num_outputs, what).copy()
    return Fc(weight.reshape(num_inputs, num_outputs).copy(), bias)


def _read_loss(stream: DlibStream, what: str) -> LossMetric:
    kind = stream.read_record_name(what, ("loss_metric_", "loss_metric_2"))
    if kind == "loss_metric_":
        return LossMetric(0.1, 0.75)  # the values dlib hard-coded for this old version
    margin = stream.read_float(what + " margin")
    return LossMetric(margin, stream.read_float(what + " distance_threshold"))


def _read_details(stream: DlibStream, name: str, what: str) -> Layer:
    if name == "con":
        return _read_conv(stream, what)
    if name == "affine":
        return _read_affine(stream, what)
    if name == "relu":
        return _read_relu(stream, what)
    if name in ("max_pool", "avg_pool"):
        return _read_pool(stream, what, name[:3])
    if name in ("fc", "fc_no_bias"):
        return _read_fc(stream, what, has_bias=name == "fc")
    match = re.fullmatch(r"add_prev(\d+)", name)
    if match:
        stream.read_record_name(what, ("add_prev_",))
        return AddPrev(int(match.group(1)))
    raise ValueError(f"unknown layer name {name!r} in layout")


def _skip_bookkeeping(stream: DlibStream, what: str, *, input_level: bool, version: int) -> None:
    """Read and drop an add_layer's training state (flags and cached tensors)."""
    for name in ("setup_called", "gradient_input_is_stale", "output_disabled"):
        stream.read_bool(f"{what} {name}")
    stream.read_tensor(what + " x_grad")
    stream.read_tensor(what + " cached_output")
    if input_level:
        stream.read_tensor(what + " grad_final")
        if version >= 3:
            stream.read_uint(what + " sample_expansion_factor")
    elif version >= 2:
        stream.read_tensor(what + " params_grad")


_WRAPPER = re.compile(r"(tag|skip)(\d+)")
_COMPUTING = re.compile(r"con|affine|relu|max_pool|avg_pool|fc|fc_no_bias|add_prev\d+")


def read_dlib_network_bytes(
    data: bytes, layout: Sequence[str], path: str | Path = "<bytes>", *, require_end: bool = True
) -> DlibNetwork:
    """Parse a serialised network whose C++ type is described by ``layout``.

    Args:
        data: the file's bytes.
        layout: layer names from the loss (first) to the input layer (last): ``loss_metric``,
            then any of ``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``, ``fc``,
            ``fc_no_bias``, ``add_prevN``, ``tagN``, ``skipN``, and last ``input_rgb_image`` or
            ``input_rgb_image_sized``.
        path: the file name used in error messages.
        require_end: raise when bytes are left over after the network.

    Returns:
        The loss record and the layers in evaluation order (input first).

    Raises:
        CheckpointError: the bytes end early or do not match the layout.
        ValueError: the layout itself is malformed.
    """
    layout = tuple(layout)
    if len(layout) < 3 or layout[0] != "loss_metric" or not layout[-1].startswith("input_rgb"):
        raise ValueError("layout must start with 'loss_metric' and end with an input_rgb layer")
    body = layout[1:-1]
    for name in body:
        if not (_WRAPPER.fullmatch(name) or _COMPUTING.fullmatch(name)):
            raise ValueError(f"unknown layer name {name!r} in layout")
    if not _COMPUTING.fullmatch(body[-1]):
        raise ValueError("the layer right above the input must be a computing layer, not a tag")

    stream = DlibStream(data, path)
    stream.read_version("add_loss_layer", (1,))
    loss = _read_loss(stream, "loss layer")

    # Pass 1, outside in: every wrapper writes its version before its subnet.
    versions: list[int] = []
    for depth, name in enumerate(body):
        what = f"layer {depth + 1} ({name})"
        if _WRAPPER.fullmatch(name):
            versions.append(stream.read_version(what, (1,)))
        elif depth == len(body) - 1:
            versions.append(stream.read_version(what, (2, 3)))
        else:
            versions.append(stream.read_version(what, (1, 2)))

    # Pass 2, inside out: the input layer, then each layer's details and bookkeeping.
    input_layer = _read_input(stream, f"layer {len(layout) - 1} (input)")
    layers: list[Layer] = [input_layer]
    for depth in range(len(body) - 1, -1, -1):
        name = body[depth]
        what = f"layer {depth + 1} ({name})"
        wrapper = _WRAPPER.fullmatch(name)
        if wrapper:
            tag = int(wrapper.group(2))
            layers.append(Tag(tag) if wrapper.group(1) == "tag" else Skip(tag))
            continue
        layers.append(_read_details(stream, name, what))
        _skip_bookkeeping(stream, what, input_level=depth == len(body) - 1, version=versions[depth])
    if require_end and stream.pos != len(data):
        raise stream.error(
            "the end of the network", f"{len(data) - stream.pos} unexpected trailing bytes"
        )
    return DlibNetwork(loss, tuple(layers))


def read_dlib_network(path: str | Path, layout: Sequence[str]) -> DlibNetwork:
    """Read a dlib network file; see :func:`read_dlib_network_bytes` for ``layout``.

    Raises:
        CheckpointError: the file cannot be read, ends early or does not match the layout.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(path, f"cannot read file ({exc.strerror or exc})") from exc
    return read_dlib_network_bytes(data, layout, path)
