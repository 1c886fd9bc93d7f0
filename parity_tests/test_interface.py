"""Every framework package provides the framework interface, with the same parameter names.

The interface is :class:`resnet_core.frameworks.FrameworkPackage`; the core reaches a
framework only through it. A member missing from a package, or taking other parameters,
fails here, not somewhere deep in the parity matrix.
"""

from __future__ import annotations

import inspect
import types

import pytest

from resnet_core import spec
from resnet_core.frameworks import FrameworkPackage

from .helpers import require

pytestmark = pytest.mark.structure


def _members() -> dict[str, object]:
    """The Protocol's members: name -> the function (or the annotation, for data members)."""
    out: dict[str, object] = dict(FrameworkPackage.__annotations__)
    out.update({n: f for n, f in vars(FrameworkPackage).items() if not n.startswith("_") and inspect.isfunction(f)})
    return out


def interface_problems(mod: object) -> list[str]:
    """What ``mod`` lacks or spells differently, compared with the Protocol (empty when it complies)."""
    problems = []
    for name, proto in _members().items():
        if not hasattr(mod, name):
            problems.append(f"missing {name}")
            continue
        if not callable(proto):
            continue
        got = getattr(mod, name)
        if not callable(got):
            problems.append(f"{name} is not callable")
            continue
        want = [p for p in inspect.signature(proto).parameters.values() if p.name != "self"]
        have = inspect.signature(got).parameters
        for p in want:
            if p.kind is p.VAR_KEYWORD:
                continue  # the Protocol allows framework-specific keyword options here
            q = have.get(p.name)
            if q is None:
                problems.append(f"{name}() has no parameter {p.name!r}")
            elif (p.kind is p.KEYWORD_ONLY) != (q.kind is q.KEYWORD_ONLY):
                problems.append(f"{name}({p.name}) is {q.kind.description}, the interface says {p.kind.description}")
        extra = [q.name for q in have.values() if q.name not in {p.name for p in want}]
        for n in extra:
            q = have[n]
            if q.default is q.empty and q.kind not in (q.VAR_KEYWORD, q.VAR_POSITIONAL):
                problems.append(f"{name}() requires {n!r}, which the interface does not pass")
    return problems


def test_each_package_meets_the_interface(framework):
    mod = require(framework)
    assert interface_problems(mod) == []
    assert isinstance(mod, FrameworkPackage)
    assert framework == mod.FRAMEWORK


def test_models_carry_their_config_under_one_name(framework):
    mod = require(framework)
    for v in spec.VARIANTS.values():
        net = mod.build(v.model, **v.kwargs)
        assert net.config == v.config, v.id
        assert mod.config_of(net) is net.config


def test_the_check_finds_a_missing_or_misspelled_member():
    """The checker itself can fail: a package without probe_outputs, and one with renamed parameters."""
    fake = types.SimpleNamespace(**{n: (lambda *a, **k: None) for n in _members() if n != "FRAMEWORK"})
    del fake.probe_outputs
    fake.FRAMEWORK = "fake"
    fake.import_weights = lambda model, state: None
    problems = interface_problems(fake)
    assert "missing probe_outputs" in problems
    assert "import_weights() has no parameter 'weights'" in problems
