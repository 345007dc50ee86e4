"""readiness.modelkit: models built on first use must mean what validated ones mean, and keep their docs."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter
from pydantic._internal._docs_extraction import extract_docstrings_from_cls
from pydantic.alias_generators import to_camel

import readiness.policy
from readiness.checks import all_checks
from readiness.checks.base import Check, CheckParams, camel, param_fields
from readiness.engine import Engine, default_policy, default_policy_document
from readiness.loader import load_text
from readiness.modelkit import described, docstring, trusted
from readiness.policy import Alerting, Match, ReadinessPolicy, ReadinessPolicySpec, Reporting
from readiness.report.model import audit

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
    assert check.default_params() == TypeAdapter(check.params).validate_python({})


@pytest.mark.parametrize("check", all_checks(), ids=lambda c: c.id)
def test_parameter_names_in_yaml_are_pydantics_camel_case(check: Check[Any]) -> None:
    for field in param_fields(check.params):
        assert camel(field.name) == to_camel(field.name)


@pytest.mark.parametrize("extra_kinds", [(), ("Worker", "Deployment")])
def test_the_builtin_engine_is_the_default_policys_engine(extra_kinds: tuple[str, ...]) -> None:
    """`Engine.builtin()` compiles from the catalog's defaults without the policy object: it must be the
    engine of `default_policy()` in every respect the engine reads from a policy."""
    fast, slow = Engine.builtin(extra_kinds), Engine(default_policy(extra_kinds))
    assert fast.name == slow.name
    assert fast.active == slow.active
    compiled = ("_only_listed", "_include_native_sidecars", "_allow_workload_exemptions", "_kinds",
                "_exemptions", "_namespace_selector", "_ids_by_class")
    assert {a: getattr(fast, a) for a in compiled} == {a: getattr(slow, a) for a in compiled}
    for namespace in ("default", "kube-system", "payments"):
        assert fast.matches_namespace(namespace) == slow.matches_namespace(namespace)
    assert fast.policy == slow.policy  # built on first access
    for path in sorted(ROOT.glob("examples/workloads/**/*.yaml")):
        documents = load_text(path.read_text(), str(path)).documents
        now = datetime(2026, 1, 1, tzinfo=UTC)
        assert audit(documents, [fast], now=now) == audit(documents, [slow], now=now), path


@pytest.mark.parametrize("model", [Match, Alerting, Reporting, ReadinessPolicySpec, readiness.policy.Checks])
def test_trusted_defaults_equal_validated_defaults(model: type[BaseModel]) -> None:
    assert trusted(model) == model()


def test_trusted_takes_fields_by_name_or_alias() -> None:
    assert trusted(Match, exclude_namespaces=["a"]).exclude_namespaces == ["a"]
    assert trusted(Alerting, **{"for": "5m"}).for_ == "5m"


@pytest.mark.parametrize("model", [*our_models(), *sorted({c.params for c in all_checks()}, key=repr)],
                         ids=lambda m: f"{m.__module__.rsplit('.', 1)[-1]}.{m.__qualname__}")
def test_docstrings_are_the_ones_pydantic_would_read(model: type) -> None:
    """pydantic's own reader (`use_attribute_docstrings`, which our models no longer pay for at import) is
    the oracle, class by class, for the policy models and the checks' parameters."""
    expected = extract_docstrings_from_cls(model, use_inspect=True)
    fields = ({f.name for f in param_fields(model)} if issubclass(model, CheckParams)
              else set(model.model_fields) if issubclass(model, BaseModel) else set())
    annotated = [name for name in inspect.get_annotations(model) if name in fields]
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


def test_an_audit_with_the_built_in_policy_loads_no_validation_library(tmp_path: Path) -> None:
    """A fresh CLI process that audits with the built-in policy never imports pydantic or the policy
    models (about 0.1 s of every run), nor PyYAML (nothing in these manifests needs it)."""
    manifest = ROOT / "examples" / "workloads" / "compliant"
    probe = f"""
import contextlib, io, sys
from readiness import cli
with contextlib.redirect_stdout(io.StringIO()):
    code = cli.run(["audit", "-f", {str(manifest)!r}, "-o", "json"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "yaml")
                or m in ("readiness.policy", "readiness.modelkit", "readiness.yaml11"))
print(code, loaded)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert out.stdout.strip() == "0 []", out.stdout + out.stderr
