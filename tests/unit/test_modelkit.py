"""readiness.modelkit: models built on first use must mean what validated ones mean, and keep their docs."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic._internal._docs_extraction import extract_docstrings_from_cls

import readiness.policy
from readiness.checks import all_checks
from readiness.checks.base import Check
from readiness.engine import default_policy, default_policy_document
from readiness.modelkit import described, docstring, trusted
from readiness.policy import Alerting, Match, ReadinessPolicy, ReadinessPolicySpec, Reporting

ROOT = Path(__file__).resolve().parents[2]


def _subclasses(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def our_models() -> list[type[BaseModel]]:
    return sorted({m for m in _subclasses(BaseModel) if m.__module__.startswith("readiness.")},
                  key=lambda m: (m.__module__, m.__qualname__))


def test_the_default_policy_is_its_document_validated() -> None:
    assert default_policy() == ReadinessPolicy.model_validate(default_policy_document())


@pytest.mark.parametrize("check", all_checks(), ids=lambda c: c.id)
def test_default_parameters_are_the_validated_defaults(check: Check[Any]) -> None:
    assert check.default_params() == check.params()


@pytest.mark.parametrize("model", [Match, Alerting, Reporting, ReadinessPolicySpec, readiness.policy.Checks])
def test_trusted_defaults_equal_validated_defaults(model: type[BaseModel]) -> None:
    assert trusted(model) == model()


def test_trusted_takes_fields_by_name_or_alias() -> None:
    assert trusted(Match, exclude_namespaces=["a"]).exclude_namespaces == ["a"]
    assert trusted(Alerting, **{"for": "5m"}).for_ == "5m"


@pytest.mark.parametrize("model", our_models(), ids=lambda m: m.__qualname__)
def test_docstrings_are_the_ones_pydantic_would_read(model: type[BaseModel]) -> None:
    """pydantic's own reader (`use_attribute_docstrings`, which our models no longer pay for at import) is
    the oracle, class by class."""
    expected = extract_docstrings_from_cls(model, use_inspect=True)
    annotated = [name for name in inspect.get_annotations(model) if name in model.model_fields]
    ours = {name: docstring(model, name) for name in annotated}
    assert ours == {name: expected.get(name) for name in annotated}


def test_every_policy_field_is_described() -> None:
    """What `kubectl explain` prints: a field of the spec or status without text is a gap in the CRD (the
    CRD describes apiVersion, kind and metadata itself)."""
    policy_models = [m for m in our_models() if m.__module__ == "readiness.policy"
                     and m.__name__ not in ("Metadata", "ReadinessPolicy")]
    undocumented = [f"{m.__qualname__}.{name}" for m in policy_models for name in m.model_fields
                    if not described(m, name)]
    assert not undocumented


def test_an_audit_with_the_built_in_policy_builds_no_validator(tmp_path: Path) -> None:
    """The point of deferring: a fresh CLI process that audits with the default policy never pays for
    building the policy and parameter models (tens of milliseconds of every run)."""
    manifest = ROOT / "examples" / "workloads" / "compliant"
    probe = f"""
import contextlib, io, sys
from pydantic import BaseModel
from readiness import cli
with contextlib.redirect_stdout(io.StringIO()):
    code = cli.run(["audit", "-f", {str(manifest)!r}, "-o", "json"])
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
built = sorted(m.__qualname__ for m in subclasses(BaseModel)
               if m.__module__.startswith("readiness.") and m.__pydantic_complete__)
print(code, built)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert out.stdout.strip() == "0 []", out.stdout + out.stderr
