"""``docs/ci-example.yml`` is a workflow that installs each framework extra and runs the installed suite for it."""

from __future__ import annotations

import pytest

from resnet_core.names import FRAMEWORKS

from .helpers import REPO, needs_repository

pytestmark = [pytest.mark.structure, needs_repository("docs/ci-example.yml")]


def test_ci_example_runs_the_installed_suite_per_framework():
    yaml = pytest.importorskip("yaml", reason="reading the workflow needs PyYAML")
    workflow = yaml.safe_load((REPO / "docs" / "ci-example.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert sorted(job["strategy"]["matrix"]["framework"]) == sorted(FRAMEWORKS)
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "resnet-parity[${{ matrix.framework }},test]" in runs  # installs the framework's extra
    assert "resnet-parity test --framework ${{ matrix.framework }}" in runs  # the installed suite, that framework
    assert "git clone" not in runs and "actions/checkout" not in str(job["steps"])  # no repository needed
