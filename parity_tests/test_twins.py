"""``resnet_torch/models.py`` and ``resnet_paddle/models.py`` are twins, line for line.

Like Hugging Face's "Copied from" checks: the PyTorch file, with the API spellings of
:data:`SPELLINGS` replaced, must equal the Paddle file on every line, except the few lines of
:data:`DIFFERENT_LINES` whose difference is the point (the framework's name, BN momentum's
convention). Any other difference, or a line added to one file only, fails, naming the line.
"""

from __future__ import annotations

import pytest

from .helpers import package_file

pytestmark = pytest.mark.structure


# PyTorch spelling -> Paddle spelling, applied in this order.
SPELLINGS: tuple[tuple[str, str], ...] = (
    ("import torch", "import paddle"),
    ("from torch import", "from paddle import"),
    ("torch.flatten(", "paddle.flatten("),
    ("nn.Module", "nn.Layer"),
    ("nn.Conv2d(", "nn.Conv2D("),
    ("nn.BatchNorm2d", "nn.BatchNorm2D"),
    ("nn.MaxPool2d(", "nn.MaxPool2D("),
    ("nn.AvgPool2d(", "nn.AvgPool2D("),
    ("nn.AdaptiveAvgPool2d(", "nn.AdaptiveAvgPool2D("),
    ("nn.ReLU(inplace=True)", "nn.ReLU()"),  # Paddle's ReLU has no in-place flag
    ("nn.Softmax(dim=1)", "nn.Softmax(axis=1)"),
    ("bias=", "bias_attr="),  # Paddle: True (or None) = a default bias, False = none
)

# Whole lines (stripped) that differ on purpose: PyTorch line -> Paddle line.
DIFFERENT_LINES: dict[str, str] = {
    '"""ResNet-18 and MiniModel in PyTorch, built from :mod:`resnet_core.spec`.':
        '"""ResNet-18 and MiniModel in PaddlePaddle, built from :mod:`resnet_core.spec`.',
    "Read side by side with ``resnet_keras/models.py`` and ``resnet_paddle/models.py``:":
        "Read side by side with ``resnet_torch/models.py`` and ``resnet_keras/models.py``:",
    "# PyTorch's momentum is the weight of the new batch statistic, as in the spec.":
        "# Paddle's momentum is the weight of the *old* running value: PyTorch 0.1 is Paddle 0.9.",
    "return nn.BatchNorm2D(channels, eps=bn.epsilon, momentum=bn.torch_momentum)":
        "return nn.BatchNorm2D(channels, momentum=bn.keras_paddle_momentum, epsilon=bn.epsilon)",
    '"""ResNet-18 with torchvision\'s attribute names; takes NCHW input."""':
        '"""ResNet-18 with paddle.vision\'s (= torchvision\'s) attribute names; takes NCHW input."""',
}  # fmt: skip


def twin_differences(torch_lines: list[str], paddle_lines: list[str]) -> list[str]:
    """Every line where the two files differ beyond the tables, as 'line N: ...' messages."""
    out = []
    if len(torch_lines) != len(paddle_lines):
        out.append(f"line counts differ: {len(torch_lines)} (torch) vs {len(paddle_lines)} (paddle)")
    for i, (t, p) in enumerate(zip(torch_lines, paddle_lines), start=1):
        translated = t
        for a, b in SPELLINGS:
            translated = translated.replace(a, b)
        if translated == p or DIFFERENT_LINES.get(translated.strip()) == p.strip():
            continue
        out.append(f"line {i}: torch {t.strip()!r} -> expected paddle {translated.strip()!r}, found {p.strip()!r}")
    return out


def _read(fw: str) -> list[str]:
    return package_file(f"resnet_{fw}", "models.py").read_text().splitlines()


def test_torch_and_paddle_models_are_line_for_line_twins():
    assert twin_differences(_read("torch"), _read("paddle")) == []


def test_every_table_entry_is_used():
    """A stale entry would let a future difference through unnoticed."""
    torch_text = "\n".join(_read("torch"))
    unused = [a for a, _ in SPELLINGS if a not in torch_text]
    assert unused == []
    translated = torch_text
    for a, b in SPELLINGS:
        translated = translated.replace(a, b)
    stale = [line for line in DIFFERENT_LINES if line not in {x.strip() for x in translated.splitlines()}]
    assert stale == []


def test_a_stray_difference_is_named():
    """The check can fail: a changed default in the Paddle file is reported with its line number."""
    torch_lines, paddle_lines = _read("torch"), _read("paddle")
    i = next(n for n, line in enumerate(paddle_lines) if "nn.AvgPool2D(4)" in line)
    paddle_lines[i] = paddle_lines[i].replace("nn.AvgPool2D(4)", "nn.AvgPool2D(4, exclusive=False)")
    diffs = twin_differences(torch_lines, paddle_lines)
    assert len(diffs) == 1 and diffs[0].startswith(f"line {i + 1}:")
    assert twin_differences(torch_lines, paddle_lines[:-1])[0].startswith("line counts differ")
