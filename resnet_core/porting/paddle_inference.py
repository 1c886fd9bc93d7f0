"""``paddle.jit.save`` exports: their parameters read, and named, without running the program.

An export is ``<prefix>.pdiparams`` beside its program, ``<prefix>.json`` (Paddle 3's PIR, the
default since Paddle 3.0) or ``<prefix>.pdmodel`` (the legacy ProgramDesc). What is stored
(paddle 3.3.1, ``paddle/static/pir_io.py`` ``save_vars_pir`` and ``paddle/static/io.py``):

* ``.pdiparams``: ``save_combine`` of every persistable variable, **sorted by its unique name**
  (``conv2d_5.w_0``, ``batch_norm2d_3.w_1``, ...), each a serialized DenseTensor::

      u32 version (0) | u64 lod_level | lod_level x (u64 nbytes, bytes) |
      u32 version (0) | i32 n | n bytes TensorDesc protobuf (1: data_type enum, 2: dims int64) | raw data

  The unique names are counters of the process that built the model, not the layers'
  structured names (``layer1.0.conv1.weight``).
* ``.json`` (PIR): the program, whose ``builtin.parameter`` ops (``"#": "p"``) declare each
  parameter's unique name, dtype and shape, and whose ops say which op consumes it. Paddle 3
  writes no ``.pdiparams.info`` in this mode, so the structured names are nowhere in the export.
* ``.pdmodel`` (legacy) comes with ``.pdiparams.info``, a pickle of ``{unique name: {"structured_name":
  ..., "stop_gradient": ..., "trainable": ...}}`` (plain dicts, strings and bools).

Reading: the ``.pdiparams`` file is parsed with numpy; the JSON program is read as data (its
ops are never built, compiled or run). Each parameter is given its role from the op that
consumes it (``conv2d`` filter, a ``reshape`` + ``add`` bias after a conv, ``batch_norm``'s
mean/variance/scale/bias, ``matmul`` weight + ``add`` bias), the layers are put in the
canonical order by following the data flow (see :func:`_order`), and that sequence is matched
against every ResNet-18 / MiniModel variant by roles and shapes: the tensors come out under the
structured names of the ``paddle`` scheme. The legacy ``.info`` pickle is read by an unpickler
that builds dicts, lists, strings, numbers and bools and refuses every global.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import names, spec

PROGRAM_SUFFIXES = (".json", ".pdmodel")
INFO_SUFFIX = ".pdiparams.info"

# framework.proto VarType.Type -> numpy dtype; BF16 (22) is widened to float32 (its top half).
_DTYPES = {
    0: np.dtype("?"), 1: np.dtype("<i2"), 2: np.dtype("<i4"), 3: np.dtype("<i8"), 4: np.dtype("<f2"),
    5: np.dtype("<f4"), 6: np.dtype("<f8"), 20: np.dtype("u1"), 21: np.dtype("i1"), 22: np.dtype("<u2"),
}  # fmt: skip
_DTYPE_NAMES = {0: "bool", 1: "int16", 2: "int32", 3: "int64", 4: "float16", 5: "float32", 6: "float64",
                20: "uint8", 21: "int8", 22: "bfloat16"}  # fmt: skip
# PIR's dtype names in the JSON program ("0.t_f32") -> the names above
_PIR_DTYPES = {
    "t_bool": "bool", "t_i16": "int16", "t_i32": "int32", "t_i64": "int64", "t_f16": "float16",
    "t_f32": "float32", "t_f64": "float64", "t_ui8": "uint8", "t_i8": "int8", "t_bf16": "bfloat16",
}  # fmt: skip


class PaddleInferenceError(ValueError):
    """The export cannot be read or named; the message says what was expected and what was found."""


# --------------------------------------------------------------------------- .pdiparams
@dataclass
class StoredTensor:
    array: np.ndarray
    dtype: str  # as stored (bfloat16 is widened to float32 in ``array``)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise PaddleInferenceError("a tensor description (protobuf) ends inside a number")
        b = buf[pos]
        value |= (b & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not b & 0x80:
            return value, pos


def _tensor_desc(buf: bytes) -> tuple[int, list[int]]:
    """``TensorDesc {required Type data_type = 1; repeated int64 dims = 2;}`` -> (data_type, dims)."""
    pos, dtype, dims = 0, None, []
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if field_no == 1 and wire == 0:
            dtype, pos = _varint(buf, pos)
        elif field_no == 2 and wire == 0:
            d, pos = _varint(buf, pos)
            dims.append(d - (1 << 64) if d >= 1 << 63 else d)
        elif field_no == 2 and wire == 2:  # packed
            n, pos = _varint(buf, pos)
            end = pos + n
            while pos < end:
                d, pos = _varint(buf, pos)
                dims.append(d - (1 << 64) if d >= 1 << 63 else d)
        else:
            raise PaddleInferenceError(f"unexpected field {field_no} (wire type {wire}) in a tensor description")
    if dtype is None:
        raise PaddleInferenceError("a tensor description without its data type")
    return dtype, dims


def read_params(path: str) -> list[StoredTensor]:
    """The tensors of a combined ``.pdiparams`` file, in file order (numpy only; nothing is executed)."""
    with open(path, "rb") as f:
        data = f.read()
    out: list[StoredTensor] = []
    pos = 0

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise PaddleInferenceError(
                f"tensor {len(out)}: the file ends inside its {what} (needs {n} bytes at offset {pos}, "
                f"file has {len(data)}): truncated file?"
            )
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    while pos < len(data):
        (version,) = struct.unpack("<I", take(4, "header"))
        if version != 0:
            raise PaddleInferenceError(f"tensor {len(out)} at offset {pos - 4}: version {version}, expected 0")
        (lod_level,) = struct.unpack("<Q", take(8, "header"))
        if lod_level > 16:
            raise PaddleInferenceError(f"tensor {len(out)}: {lod_level} LoD levels: not a parameters file?")
        for _ in range(lod_level):
            (n,) = struct.unpack("<Q", take(8, "LoD"))
            take(n, "LoD")
        (version,) = struct.unpack("<I", take(4, "header"))
        if version != 0:
            raise PaddleInferenceError(f"tensor {len(out)}: tensor version {version}, expected 0")
        (n,) = struct.unpack("<i", take(4, "header"))
        dtype, dims = _tensor_desc(take(n, "description"))
        if dtype not in _DTYPES:
            raise PaddleInferenceError(f"tensor {len(out)}: data type {dtype}, expected one of {sorted(_DTYPE_NAMES)}")
        if any(d < 0 for d in dims):
            raise PaddleInferenceError(f"tensor {len(out)}: negative dimension in {dims}")
        count = int(np.prod(dims, dtype=np.int64)) if dims else 1
        raw = np.frombuffer(take(count * _DTYPES[dtype].itemsize, "data"), dtype=_DTYPES[dtype]).reshape(dims)
        if dtype == 22:  # bfloat16 -> float32, exactly
            raw = (raw.astype("<u4") << 16).view("<f4")
        out.append(StoredTensor(raw.copy(), _DTYPE_NAMES[dtype]))
    if not out:
        raise PaddleInferenceError("the file holds no tensors")
    return out


# --------------------------------------------------------------------------- the PIR program
@dataclass
class _Op:
    index: int
    name: str  # "conv2d", "batch_norm_", ... (the dialect prefix "1." dropped)
    inputs: list[int]
    outputs: list[int]
    attrs: dict[str, Any]


@dataclass
class Program:
    params: dict[int, tuple[str, str, list[int]]]  # value id -> (unique name, dtype, shape)
    ops: list[_Op]


def _attr_value(a: Any) -> Any:
    d = a.get("D") if isinstance(a, dict) else None
    if isinstance(d, list):
        return [_attr_value(x) for x in d]
    return d


def read_program(path: str) -> Program:
    """The ops and parameters of a PIR ``.json`` program, as data."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PaddleInferenceError(f"{path}: not a JSON program ({e})") from None
    try:
        if doc["base_code"]["magic"] != "pir":
            raise PaddleInferenceError(f"{path}: expected a PIR program (magic 'pir'), found {doc['base_code']!r:.80}")
        regions = doc["program"]["regions"]
        if len(regions) != 1 or len(regions[0]["blocks"]) != 1:
            raise PaddleInferenceError(f"{path}: expected one region with one block, found {len(regions)} region(s)")
        raw_ops = regions[0]["blocks"][0]["ops"]
        params: dict[int, tuple[str, str, list[int]]] = {}
        ops: list[_Op] = []
        for i, op in enumerate(raw_ops):
            if op["#"] == "p":
                name = op["A"][-1]
                tt = op["O"]["TT"]["D"]
                dtype = _PIR_DTYPES.get(tt[0]["#"].split(".")[-1], tt[0]["#"])
                params[int(op["O"]["%"])] = (str(name), dtype, [int(d) for d in tt[1]])
                continue
            if op.get("regions"):
                raise PaddleInferenceError(f"{path}: op {op['#']} holds nested regions (control flow)")
            outs = op.get("O") or []
            ops.append(
                _Op(
                    i,
                    str(op["#"]).split(".", 1)[-1],
                    [int(v["%"]) for v in op.get("I") or []],
                    [int(v["%"]) for v in (outs if isinstance(outs, list) else [outs])],
                    {a["N"]: _attr_value(a["AT"]) for a in op.get("A") or [] if isinstance(a, dict)},
                )
            )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, PaddleInferenceError):
            raise
        raise PaddleInferenceError(f"{path}: not a Paddle PIR program ({type(e).__name__}: {e})") from None
    return Program(params, ops)


# --------------------------------------------------------------------------- layers from the data flow
@dataclass
class _Layer:
    kind: str  # conv, bn, linear
    op: int  # program position of its main op
    params: dict[str, int]  # role slot ("weight", "bias", "running_mean", ...) -> parameter value id
    inputs: list[int]  # activation values it reads
    output: int
    preds: set[int] = field(default_factory=set)
    succs: set[int] = field(default_factory=set)


_BN_OPS = ("batch_norm_", "batch_norm")


def _layers(prog: Program) -> list[_Layer]:
    """Every op that consumes a parameter, grouped into conv / bn / linear layers; any other use is refused."""
    consumers: dict[int, list[_Op]] = {}
    producer: dict[int, _Op] = {}
    for op in prog.ops:
        for v in op.inputs:
            consumers.setdefault(v, []).append(op)
        for v in op.outputs:
            producer[v] = op
    is_param = prog.params.__contains__
    claimed: set[int] = set()
    layers: list[_Layer] = []

    def bias_after(value: int) -> tuple[int, int] | None:
        """A bias added to ``value``: ``add(value, reshape(param))`` or ``add(value, param)`` -> (param, output)."""
        users = consumers.get(value, [])
        if len(users) != 1 or users[0].name != "add":
            return None
        add = users[0]
        other = [v for v in add.inputs if v != value]
        if len(other) != 1:
            return None
        src = other[0]
        if not is_param(src) and src in producer and producer[src].name == "reshape":
            src = producer[src].inputs[0]
        return (src, add.outputs[0]) if is_param(src) else None

    for op in prog.ops:
        params = [v for v in op.inputs if is_param(v)]
        if not params:
            continue
        if op.name == "conv2d" and len(op.inputs) == 2 and is_param(op.inputs[1]) and not is_param(op.inputs[0]):
            layer = _Layer("conv", op.index, {"weight": op.inputs[1]}, [op.inputs[0]], op.outputs[0])
            bias = bias_after(op.outputs[0])
            if bias:
                layer.params["bias"], layer.output = bias
        elif op.name in _BN_OPS and len(op.inputs) == 5 and all(is_param(v) for v in op.inputs[1:]):
            mean, var, scale, shift = op.inputs[1:]
            layer = _Layer(
                "bn", op.index, {"weight": scale, "bias": shift, "running_mean": mean, "running_var": var},
                [op.inputs[0]], op.outputs[0],
            )  # fmt: skip
        elif (
            op.name == "matmul"
            and len(op.inputs) == 2
            and is_param(op.inputs[1])
            and not op.attrs.get("transpose_x")
            and not op.attrs.get("transpose_y")
        ):
            layer = _Layer("linear", op.index, {"weight": op.inputs[1]}, [op.inputs[0]], op.outputs[0])
            bias = bias_after(op.outputs[0])
            if bias:
                layer.params["bias"], layer.output = bias
        else:  # a conv's or linear's bias (claimed with it), or a use reported below as unclaimed
            continue
        shared = [prog.params[v][0] for v in layer.params.values() if v in claimed]
        if shared:
            raise PaddleInferenceError(
                f"parameter(s) {', '.join(shared)} are used by more than one layer: expected a ResNet-18 or "
                f"MiniModel program, where every layer has its own"
            )
        claimed.update(layer.params.values())
        layers.append(layer)
    # each parameter feeds its layer's op only (a bias: through its reshape, into the add)
    for layer in layers:
        for slot, v in layer.params.items():
            for op in consumers.get(v, []):
                if op.index != layer.op and not (slot == "bias" and op.name in ("add", "reshape")):
                    raise PaddleInferenceError(
                        f"parameter {prog.params[v][0]} ({layer.kind} {slot}) is also read by a {op.name} op: "
                        f"expected a ResNet-18 or MiniModel program, where it feeds its layer only"
                    )
    unclaimed = [v for v in prog.params if v not in claimed]
    if unclaimed:
        uses = sorted({op.name for v in unclaimed for op in consumers.get(v, [])}) or ["no op"]
        raise PaddleInferenceError(
            f"{len(unclaimed)} parameter(s) are not the weights of a conv2d, batch_norm or linear layer "
            f"({', '.join(prog.params[v][0] for v in unclaimed[:5])}; used by {', '.join(uses)}): "
            f"expected a ResNet-18 or MiniModel program"
        )
    # data flow between layers, through every op that is not a layer (relu, pool, add, reshape, ...)
    by_output = {layer.output: i for i, layer in enumerate(layers)}
    memo: dict[int, frozenset[int]] = {}

    def sources(value: int) -> frozenset[int]:
        if value in by_output:
            return frozenset({by_output[value]})
        if value in memo:
            return memo[value]
        memo[value] = frozenset()
        op = producer.get(value)
        found: set[int] = set()
        if op is not None:
            for v in op.inputs:
                if not is_param(v):
                    found |= sources(v)
        memo[value] = frozenset(found)
        return memo[value]

    for i, layer in enumerate(layers):
        for v in layer.inputs:
            layer.preds |= sources(v)
        for p in layer.preds:
            layers[p].succs.add(i)
    return layers


def _order(layers: list[_Layer], longer_first: bool) -> list[int]:
    """The layers in a data-flow order that finishes one branch before the next.

    Where the flow forks (a residual block's main path and its shortcut), the branch taken first
    decides the order: ResNet-18's canonical order puts the main path first (conv1, bn1, conv2,
    bn2, downsample), MiniModel's the shortcut (shortcut, bn1, conv1, bn2, conv2). The exporter's
    own op order is not trusted for this (paddle.vision's forward runs the shortcut last, another
    model's may not); both orders are tried and the shapes decide.
    """
    height: dict[int, int] = {}

    def h(i: int) -> int:
        if i not in height:
            height[i] = 1 + max((h(s) for s in layers[i].succs), default=0)
        return height[i]

    done: set[int] = set()
    order: list[int] = []

    def visit(i: int) -> None:
        order.append(i)
        done.add(i)
        for s in sorted(layers[i].succs, key=lambda s: (-h(s) if longer_first else h(s), layers[s].op)):
            if s not in done and layers[s].preds <= done:
                visit(s)

    for i in sorted(range(len(layers)), key=lambda i: layers[i].op):
        if i not in done and not layers[i].preds:
            visit(i)
    if len(order) != len(layers):
        raise PaddleInferenceError("the program's layers do not form a forward data flow (a cycle?)")
    return order


# --------------------------------------------------------------------------- matching a model
@dataclass
class Named:
    """The export's tensors under ``paddle``-scheme names, and how they were found."""

    tensors: dict[str, np.ndarray]
    config: spec.Config | None  # what the program states (None: from the names, as for any state dict)
    notes: list[str]
    stored_dtypes: dict[str, str] = field(default_factory=dict)


def _modules(cfg: spec.Config) -> list[tuple[str, list[spec.ParamSpec]]]:
    out: list[tuple[str, list[spec.ParamSpec]]] = []
    for p in cfg.param_specs():
        if out and out[-1][0] == p.module:
            out[-1][1].append(p)
        else:
            out.append((p.module, [p]))
    return out


def _canonical_shape(role: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    perm = names.ROLES[role].paddle_perm  # Paddle's Linear weight is [in, out]
    return tuple(shape) if perm is None or len(shape) != len(perm) else tuple(shape[i] for i in np.argsort(perm))


def _try(skeleton: spec.Config, layers: list[_Layer], order: list[int], arrays: dict[int, np.ndarray]):
    """``(paddle name -> value id, None)`` when the ordered layers are ``skeleton``'s, else ``(None, why)``."""
    modules = _modules(skeleton)
    if len(modules) != len(order):
        return None, f"{len(modules)} layers expected, {len(order)} found"
    assigned: dict[str, tuple[spec.ParamSpec, int]] = {}
    for k, ((module, specs), i) in enumerate(zip(modules, order, strict=True)):
        layer = layers[i]
        want = {p.role for p in specs}
        got = {f"{layer.kind}.{slot}" for slot in layer.params}
        if want != got:
            return None, f"layer {k + 1} ({module}): expected {sorted(want)}, found {sorted(got)}"
        for p in specs:
            assigned[p.name] = (p, layer.params[p.role.split(".", 1)[1]])
    shapes = {n: _canonical_shape(p.role, arrays[v].shape) for n, (p, v) in assigned.items()}
    try:
        cfg = spec.make_config(skeleton.model, **{**skeleton.to_dict(), **skeleton.options_from_shapes(shapes)})
    except ValueError as e:
        return None, str(e)
    for p in cfg.param_specs():
        if shapes.get(p.name) != tuple(p.shape):
            return None, f"{p.name}: expected shape {tuple(p.shape)}, found {shapes.get(p.name)}"
    return (cfg, {names.framework_name("paddle", p.module, p.role): v for p, v in assigned.values()}), None


def name_tensors(prog: Program, tensors: dict[int, StoredTensor]) -> Named:
    """Give the program's parameters the structured names of the ``paddle`` scheme, by data flow and shapes."""
    layers = _layers(prog)
    arrays = {v: t.array for v, t in tensors.items()}
    found: dict[tuple, tuple[spec.Config, dict[str, int]]] = {}
    misses: list[tuple[int, str, str]] = []
    skeletons = [cfg for model in spec.MODELS for cfg in spec.CONFIGS[model].skeletons()]
    for longer_first in (True, False):
        order = _order(layers, longer_first)
        for sk in skeletons:
            fit, why = _try(sk, layers, order, arrays)
            if fit is not None:
                found[tuple(sorted(fit[1].items()))] = fit
            else:
                misses.append((len(_modules(sk)) == len(order), sk.model, why or ""))
    if not found:
        kinds = {k: sum(layer.kind == k for layer in layers) for k in ("conv", "bn", "linear")}
        closest = max(misses, key=lambda m: m[0])
        raise PaddleInferenceError(
            f"the program's {len(layers)} layers ({kinds['conv']} conv2d, {kinds['bn']} batch_norm, "
            f"{kinds['linear']} linear) are no ResNet-18 or MiniModel: closest {closest[1]}: {closest[2]}"
        )
    if len(found) > 1:
        raise PaddleInferenceError(
            f"the program's layers fit {len(found)} different namings "
            f"({sorted({c.model for c, _ in found.values()})}); refusing to guess"
        )
    cfg, mapping = next(iter(found.values()))
    if cfg.model == "minimodel":  # the softmax on the logits is in the program, not in the weights
        cfg = spec.make_config(cfg.model, **{**cfg.to_dict(), "softmax": any(op.name == "softmax" for op in prog.ops)})
    out = {n: tensors[v].array for n, v in mapping.items()}
    stored = {n: "bfloat16" for n, v in mapping.items() if tensors[v].dtype == "bfloat16"}
    return Named(out, cfg, [], stored)


# --------------------------------------------------------------------------- legacy .pdiparams.info
class _InfoUnpickler(pickle.Unpickler):
    """Plain containers, strings, numbers and bools only: every global is refused (none is needed)."""

    def find_class(self, module: str, name: str) -> Any:
        raise PaddleInferenceError(f"the .pdiparams.info pickle asks for {module}.{name}; refused, nothing was run")


def read_info(path: str) -> dict[str, str]:
    """``{unique name: structured name}`` from a legacy export's ``.pdiparams.info``."""
    try:
        with open(path, "rb") as f:
            info = _InfoUnpickler(f).load()
    except PaddleInferenceError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, MemoryError) as e:
        raise PaddleInferenceError(f"{path}: truncated or corrupted ({type(e).__name__}: {e})") from None
    if not isinstance(info, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in info.items()):
        raise PaddleInferenceError(f"{path}: expected a dict of unique name -> info dict, found {type(info).__name__}")
    return {k: v["structured_name"] for k, v in info.items() if isinstance(v.get("structured_name"), str)}


# --------------------------------------------------------------------------- the export
def program_beside(path: str) -> str | None:
    """The program file of the export whose parameters are ``path`` (``<prefix>.json`` or ``.pdmodel``)."""
    prefix = path[: -len(".pdiparams")] if path.endswith(".pdiparams") else path
    return next((prefix + s for s in PROGRAM_SUFFIXES if os.path.isfile(prefix + s)), None)


def _match_declared(names_sorted: list[str], declared: dict[str, tuple[str, list[int]]], stored: list[StoredTensor]):
    for name, t in zip(names_sorted, stored, strict=True):
        dtype, shape = declared[name]
        if dtype != t.dtype or list(t.array.shape) != list(shape):
            raise PaddleInferenceError(
                f"parameter {name}: the program declares {dtype} {list(shape)}, the file holds "
                f"{t.dtype} {list(t.array.shape)}: parameters and program of different exports?"
            )


def read_export(path: str) -> tuple[Named, str]:
    """``(the named tensors, the program file)`` of the export whose parameters file is ``path``."""
    program = program_beside(path)
    if program is None:
        prefix = os.path.basename(path)[: -len(".pdiparams")]
        raise PaddleInferenceError(
            f"expected its program beside it ({' or '.join(prefix + s for s in PROGRAM_SUFFIXES)}); found neither"
        )
    stored = read_params(path)
    if program.endswith(".json"):
        prog = read_program(program)
        declared = {name: (dtype, shape) for name, dtype, shape in prog.params.values()}
        if len(declared) != len(prog.params):
            raise PaddleInferenceError(f"{program}: two parameters share a name")
        if len(stored) != len(declared):
            raise PaddleInferenceError(
                f"{program} declares {len(declared)} parameters, the .pdiparams file holds {len(stored)} tensors"
            )
        order = sorted(declared)  # save_vars_pir writes them sorted by name
        _match_declared(order, declared, stored)
        by_name = dict(zip(order, stored, strict=True))
        named = name_tensors(prog, {v: by_name[n] for v, (n, _, _) in prog.params.items()})
        named.notes.append(
            f"parameters of a paddle.jit.save export (PIR program {os.path.basename(program)}, not run), "
            f"named by the program's data flow as a {named.config.model}"
        )
        return named, program
    info_path = path + ".info"
    if not os.path.isfile(info_path):
        raise PaddleInferenceError(
            f"a legacy export ({os.path.basename(program)}) names its parameters in {os.path.basename(info_path)}, "
            f"which is not beside it"
        )
    structured = read_info(info_path)
    order = sorted(structured)
    if len(order) != len(stored):
        raise PaddleInferenceError(
            f"{info_path} names {len(order)} parameters, the .pdiparams file holds {len(stored)} tensors"
        )
    tensors = {structured[n]: t.array for n, t in zip(order, stored, strict=True)}
    stored_dtypes = {structured[n]: "bfloat16" for n, t in zip(order, stored, strict=True) if t.dtype == "bfloat16"}
    note = f"parameters of a legacy paddle.jit.save export, named by {os.path.basename(info_path)}"
    return Named(tensors, None, [note], stored_dtypes), program
