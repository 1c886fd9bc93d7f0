"""Shapes from the specification alone, all read off the one shape walk (``cfg.walk``)."""

from __future__ import annotations

from .config import ModelConfig
from .layers import BatchNorm, InputRule


def stage_shapes(cfg: ModelConfig, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Per-sample NCHW shape after each stage (the logits: ``(num_classes,)``)."""
    steps = {s.name: s for s in cfg.walk(height, width)}
    out: dict[str, tuple[int, ...]] = {}
    for p in cfg.stages():
        s = steps[p.name]
        out[p.stage] = (s.channels,) if p.stage == "logits" else (s.channels, *s.out_hw)
    return out


def bn_input_sizes(cfg: ModelConfig, height: int, width: int) -> dict[str, tuple[int, int]]:
    """Spatial size (H, W) of every BatchNorm's input: each BN averages over N*H*W samples per channel."""
    bns = {layer.name for layer in cfg.layers() if isinstance(layer, BatchNorm)}
    return {s.name: s.in_hw for s in cfg.walk(height, width) if s.name in bns}


def check_input_shape(cfg: ModelConfig, shape: tuple, layout: str) -> None:
    """Raise ``ValueError`` saying what was expected and what was received.

    ``layout`` is ``"NCHW"`` (PyTorch, Paddle) or ``"NHWC"`` (Keras). Unknown
    (``None``) dimensions, as in symbolic Keras shapes, are not checked.
    """
    check_input(cfg.input_rule(), shape, layout)


def dtype_name(dtype: object) -> str:
    """``float32`` from ``torch.float32``, ``paddle.float32``, ``<dtype: 'float32'>``, ``np.float32``, ``"float32"``."""
    s = str(getattr(dtype, "name", None) or dtype) if not isinstance(dtype, str) else dtype
    if "'" in s:
        s = s.split("'")[1]
    return s.rsplit(".", 1)[-1].lower()  # Paddle: paddle.float32.name == "FLOAT32"


def check_input(
    rule: InputRule,
    shape: tuple,
    layout: str,
    dtype: object = None,
    weights_dtype: object = None,
    training: bool = False,
) -> None:
    """:func:`check_input_shape` on a config's :class:`InputRule` (what the models' ``forward`` calls).

    With ``dtype`` and ``weights_dtype`` also the one dtype rule, the same in every framework:
    the input's dtype must equal the weights' (float32 unless the model was cast). It is refused,
    not cast: PyTorch and Paddle fail deep inside a layer on float64/int64/uint8 ("expected scalar
    type Double"; "kernel ... not registered") while Keras casts silently, and a silent cast of
    uint8 images would also hide that they were never scaled. ``training``: an empty batch is
    refused, because BatchNorm would average over zero samples and turn its moving statistics
    into NaN for good (Keras does so without a word).
    """
    shape = tuple(shape)
    if dtype is not None and weights_dtype is not None and dtype_name(dtype) != dtype_name(weights_dtype):
        got, want = dtype_name(dtype), dtype_name(weights_dtype)
        raise TypeError(
            f"{rule.model} expects {want} input (the dtype of its weights); received {got} (input shape {shape}). "
            f"Cast it first (and scale integer images as the weights were trained), or cast the model to {got}"
        )
    in_ch = rule.in_channels
    want = f"(batch, {in_ch}, H, W)" if layout == "NCHW" else f"(batch, H, W, {in_ch})"
    if len(shape) != 4:
        raise ValueError(
            f"{rule.model} expects a 4-D {layout} input {want}; received a {len(shape)}-D input of shape {shape}"
        )
    if training and shape[0] == 0:
        raise ValueError(
            f"{rule.model} refuses an empty batch in training mode (input shape {shape}): BatchNorm would average "
            "over zero samples and turn its moving statistics into NaN for good; pass at least one sample"
        )
    c, h, w = (shape[1], shape[2], shape[3]) if layout == "NCHW" else (shape[3], shape[1], shape[2])
    if c is not None and c != in_ch:
        raise ValueError(
            f"{rule.model} expects {in_ch} input channels in {layout} layout {want}; "
            f"received {c} channels (input shape {shape})"
        )
    lo = rule.min_size
    if rule.exact:
        if (h is not None and h != lo) or (w is not None and w != lo):
            raise ValueError(
                f"{rule.label} expects {lo}x{lo} images ({rule.reason}); received {h}x{w} (input shape {shape})"
            )
        return
    for dim, v in (("height", h), ("width", w)):
        if v is not None and v < lo:
            raise ValueError(
                f"{rule.label} expects images of at least {lo}x{lo} ({rule.reason}); "
                f"received {dim} {v} (input shape {shape})"
            )
