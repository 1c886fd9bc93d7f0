"""The report: one row per pair of frameworks where both directions agree, exact zeros shown as exact.

Framework-free: the rows are built from :mod:`resnet_core.parity.compare` on seeded arrays, the way
the matrix builds them.
"""

from __future__ import annotations

import numpy as np
import pytest

from resnet_core import frameworks
from resnet_core.parity import compare
from resnet_core.parity.matrix import Row
from resnet_core.parity.report import merged, panel_floor, plot_values, row_line, symmetric, write_report
from resnet_core.parity.settings import FORWARD_TOL

pytestmark = pytest.mark.structure
NAMES = [("stem.conv", "stem"), ("unit1", None), ("unit2", "group1"), ("head.fc", "logits")]


def _outputs(seed: int, noise: float) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    a = {n: rng.standard_normal((2, 4)) for n, _ in NAMES}
    b = {n: v + noise * rng.standard_normal(v.shape) for n, v in a.items()}
    a["stem.conv"] = b["stem.conv"] = np.ones((2, 4))  # an exactly equal probe: error 0
    return a, b


def _comparison(ref: dict, got: dict) -> compare.Comparison:
    return compare.Comparison("c", [compare.probe_error(n, ref[n], got[n], s) for n, s in NAMES], FORWARD_TOL)


def _pair(level: str, x: dict, y: dict, y_back: dict | None = None) -> list[Row]:
    """``torch -> keras`` compares y against x; ``keras -> torch`` compares x against y (or ``y_back``)."""
    there = Row("minimodel", ("torch", "keras"), level, "cpu", _comparison(x, y), detail="32x32")
    back = Row("minimodel", ("keras", "torch"), level, "cpu", _comparison(y_back or y, x), detail="32x32")
    return [there, back]


def test_symmetric_directions_are_shown_once():
    x, y = _outputs(0, 1e-6)
    rows = _pair("eval", x, y)
    assert symmetric(*rows)
    (shown,) = merged(rows)
    row, both = shown
    assert both and row.direction == ("torch", "keras")
    assert "torch <-> keras" in row_line(row, both)
    assert row.comparison.max_error == max(r.comparison.max_error for r in rows)


def test_directions_that_differ_are_both_kept():
    """Negative control: a reverse direction whose numbers differ (a lossy transfer) is not merged."""
    x, y = _outputs(0, 1e-6)
    _, y2 = _outputs(1, 1e-6)
    rows = _pair("eval", x, y, y_back=y2)
    assert not symmetric(*rows)
    assert [b for _, b in merged(rows)] == [False, False]


def test_exact_zero_is_drawn_at_the_axis_bottom_not_at_1e_12():
    x, y = _outputs(0, 1e-6)
    errors = _comparison(x, y).errors
    assert errors[0].error == 0 and all(e.error > 0 for e in errors[1:])
    bottom = panel_floor([errors])
    ys, exact, broken = plot_values(errors, bottom)
    smallest = min(e.error for e in errors[1:])
    assert exact == [0] and broken == [] and ys[0] == bottom
    assert smallest / 100 < bottom < smallest  # one decade below the smallest real error, not a fixed 1e-12
    tiny = [compare.ProbeError("p", 1e-13, 1.0, 1e-13)]  # negative control: tiny is not exact
    assert plot_values(tiny, panel_floor([tiny]))[1] == []


def test_report_states_the_check_and_plots_per_pair(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = _outputs(0, 1e-6)
    _, y2 = _outputs(1, 1e-6)
    rows = _pair("eval", x, y) + _pair("train", x, y)
    path = write_report(tmp_path, rows, ["torch", "keras"], {}, ["minimodel"], 1.0)
    text = path.read_text()
    k = frameworks.label("keras")  # rows name the Keras backend that ran: keras/tensorflow here
    assert text.count(f"| torch <-> {k} |") == 2 and f"| {k} -> torch |" not in text
    assert "Every direction run in this report matched its reverse" in text
    assert (tmp_path / "per-layer-error-torch-and-keras.png").exists()
    assert not (tmp_path / "per-layer-error-keras-to-torch.png").exists()

    rows = _pair("eval", x, y, y_back=y2)
    text = write_report(tmp_path / "b", rows, ["torch", "keras"], {}, ["minimodel"], 1.0).read_text()
    assert f"| torch -> {k} |" in text and f"| {k} -> torch |" in text and "<->" not in text.split("|---")[1]
    assert "2 rows differ between the two directions" in text
    assert (tmp_path / "b" / "per-layer-error-torch-to-keras.png").exists()
    assert (tmp_path / "b" / "per-layer-error-keras-to-torch.png").exists()
