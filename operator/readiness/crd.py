"""Render the ReadinessPolicy CRD from the pydantic model (`readiness.policy`), so the two never disagree.

    python -m readiness.crd            print the CRD
    python -m readiness.crd --write    write crds/readinesspolicies.yaml
    python -m readiness.crd --check    exit 1 when the committed file differs from the model

The API server only accepts a *structural* schema: every node has a `type`, no `$ref`, no `anyOf` with
null, maps as `additionalProperties`. Pydantic's JSON Schema is close; `_structural` closes the gap.
Cross-field rules become CEL `x-kubernetes-validations`: a model's `__cel_rules__` (rule, message) pairs,
plus, for check parameters, `minX <= maxX` for every `min_x`/`max_x` field pair.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, NoDefault
from pydantic_core import PydanticUndefined, core_schema

from readiness.checks.base import CheckParams, camel, param_fields
from readiness.loader import GO_BOOL
from readiness.modelkit import described, docstring
from readiness.policy import (
    API_GROUP,
    API_VERSION,
    KIND,
    MAX_POLICY_NAME_LENGTH,
    PLURAL,
    ReadinessPolicy,
    ReadinessPolicySpec,
    ReadinessPolicyStatus,
    fields_of,
)

CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / f"{PLURAL}.yaml"
SINGULAR = KIND.lower()
SHORT_NAMES = ["rpol"]
CATEGORIES = ["readiness"]
DESCRIPTION = (
    "A cluster-wide production-readiness policy: which workloads are judged against the check catalog "
    "(probes, resources, security context, shutdown, availability), how strictly (audit, warn or deny), "
    "and who is exempt. The operator reports the verdicts in `status`."
)
HEADER = "# Generated from readiness.policy by `python -m readiness.crd --write`. Do not edit.\n"

Schema = dict[str, Any]

# Keys that pydantic emits and a structural schema must not carry (or that only add noise).
_DROPPED_KEYS = frozenset({"title", "$defs"})


# -- pydantic -> JSON Schema, with CEL rules and factory defaults ------------------------------------------


def cel_rules(model: type) -> list[tuple[str, str]]:
    """The (rule, message) pairs of a model: its own `__cel_rules__`, plus ordered min/max pairs for check
    parameters (the same rule their `__post_init__` enforces)."""
    rules: list[tuple[str, str]] = list(getattr(model, "__cel_rules__", []))
    if issubclass(model, CheckParams):
        rules += [rule for rule in _min_max_rules(model) if rule not in rules]
    return rules


def _min_max_rules(model: type[CheckParams]) -> Iterator[tuple[str, str]]:
    fields = {f.name for f in param_fields(model)}
    for name in fields:
        if name.startswith("min_") and f"max_{name[4:]}" in fields:
            low, high = camel(name), camel(f"max_{name[4:]}")
            yield (f"!has(self.{low}) || !has(self.{high}) || self.{low} <= self.{high}",
                   f"{low} must not exceed {high}")


def _meaningful_default(value: Any) -> bool:
    """Defaults worth writing into the CRD: None and empty collections mean the same as absent."""
    if isinstance(value, list | tuple | dict):
        return bool(value)
    return value is not None and value is not NoDefault


def _crd_default(field: Any) -> Any:
    """The CRD default of a field (`FieldInfo` or a with-default core schema), or NoDefault.

    A model-valued default becomes `{}`: the API server then fills in the model's own field defaults,
    so `alerting.for` shows in a stored policy that never mentions alerting. A model without defaults
    (such as `checks`) gets none, so stored objects do not fill up with empty objects."""
    factory = field.get("default_factory") if isinstance(field, dict) else field.default_factory
    if factory is None:
        value = field.get("default", NoDefault) if isinstance(field, dict) else field.default
    else:
        value = factory()
    if isinstance(value, BaseModel):
        return {} if _model_has_defaults(type(value)) else NoDefault
    return value if _meaningful_default(value) and value is not PydanticUndefined else NoDefault


def _model_has_defaults(model: type[BaseModel]) -> bool:
    return any(_crd_default(field) is not NoDefault for field in model.model_fields.values())


class _CrdJsonSchema(GenerateJsonSchema):
    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        return _crd_default(schema)

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        return _annotated(schema["cls"], super().model_schema(schema))

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        return _annotated(schema["cls"], super().dataclass_schema(schema))  # check parameters


def _annotated(model: type, json_schema: JsonSchemaValue) -> JsonSchemaValue:
    """Field descriptions from docstrings, and the model's CEL rules."""
    _describe_properties(model, json_schema)
    rules = cel_rules(model)
    if rules:
        json_schema["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in rules]
    return json_schema


def _describe_properties(model: type, json_schema: JsonSchemaValue) -> None:
    """Each property's description from its field's docstring, where `Field` gave none (readiness.modelkit:
    our models do not read their docstrings at import)."""
    properties = json_schema.get("properties", {})
    for name, key, _annotation in fields_of(model):
        node = properties.get(key)
        if node is not None and "description" not in node:
            text = docstring(model, name)
            if text:
                node["description"] = text


def _json_schema(model: type[BaseModel]) -> Schema:
    return model.model_json_schema(by_alias=True, schema_generator=_CrdJsonSchema, mode="validation")


# -- JSON Schema -> structural schema ----------------------------------------------------------------------


class StructuralError(ValueError):
    """The model uses a construct with no structural equivalent (a real union, an untyped field)."""


def structural(schema: Schema, *, keep_defaults: bool = True) -> Schema:
    """Inline `$ref`s, flatten `X | None`, drop titles; check every node has a type."""
    return _structural(schema, schema.get("$defs", {}), keep_defaults, "")


def _structural(node: Schema, defs: Schema, keep_defaults: bool, path: str) -> Schema:
    node = _flatten(node, defs, path)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or (key == "default" and not keep_defaults):
            continue
        if key == "properties":
            value = {name: _structural(sub, defs, keep_defaults, f"{path}.{name}")
                     for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            if value is False:
                continue  # unknown fields are pruned, and rejected by strict field validation
            value = _structural(value, defs, keep_defaults, f"{path}[]") if isinstance(value, dict) else value
        out[key] = " ".join(value.split()) if key == "description" else value
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "description" in out and _meaningful_default(out.get("default")):
        out["description"] = _with_default(out["description"], out["default"])
    if "type" not in out:
        raise StructuralError(f"{path or '<root>'}: schema node without a type: {node}")
    return _ordered(out)


def _with_default(description: str, default: Any) -> str:
    """`kubectl explain` does not print defaults: say them in the description."""
    shown = ", ".join(map(str, default)) if isinstance(default, list) else json.dumps(default).strip('"')
    return f"{description} Default: {shown}."


_FIRST_KEYS = ("type", "description")


def _ordered(node: Schema) -> Schema:
    """`type` and `description` first, so the YAML reads like `kubectl explain`."""
    return {**{k: node[k] for k in _FIRST_KEYS if k in node}, **node}


def _flatten(node: Schema, defs: Schema, path: str) -> Schema:
    """Resolve `$ref` and `anyOf: [X, null]` into one node; the node's own keys win (its description)."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _flatten({**target, **rest}, defs, path)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b != {"type": "null"}]
        if len(branches) != 1:
            raise StructuralError(f"{path}: unions other than `X | None` have no structural schema")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _flatten({**_flatten(branches[0], defs, path), **rest}, defs, path)
    return node


# -- the CRD -----------------------------------------------------------------------------------------------


def _root_schema() -> Schema:
    spec = structural(_json_schema(ReadinessPolicySpec))
    spec["default"] = {}  # so `enforcement` and the other defaults show even when spec is omitted
    status = structural(_json_schema(ReadinessPolicyStatus), keep_defaults=False)
    return {
        "type": "object",
        "description": DESCRIPTION,
        "properties": {
            "apiVersion": {"type": "string", "description": f"Always {API_GROUP}/{API_VERSION}."},
            "kind": {"type": "string", "description": f"Kind of this object: {KIND}."},
            "metadata": {"type": "object"},
            "spec": {**spec, "description": described(ReadinessPolicy, "spec") or ""},
            "status": status,
        },
        # The API server checks metadata.name as a DNS subdomain (253 characters); the operator also writes
        # it as a label value. CEL on the root may read metadata.name (and nothing else of metadata).
        "x-kubernetes-validations": [{
            "rule": f"self.metadata.name.size() <= {MAX_POLICY_NAME_LENGTH}",
            "message": f"metadata.name must be at most {MAX_POLICY_NAME_LENGTH} characters: the operator "
                       "writes it as a label value",
        }],
    }


_READY = '.status.conditions[?(@.type=="Ready")]'
_PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": f"{_READY}.status",
     "description": "True once the policy compiled and the operator audited with it."},
    {"name": "Mode", "type": "string", "jsonPath": ".spec.enforcement",
     "description": "Enforcement: audit, warn or deny."},
    {"name": "Matched", "type": "integer", "jsonPath": ".status.summary.matched",
     "description": "Workloads judged at the last audit."},
    {"name": "Violating", "type": "integer", "jsonPath": ".status.summary.violating",
     "description": "Matched workloads with open findings."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    # -o wide
    {"name": "Errors", "type": "integer", "jsonPath": ".status.summary.bySeverity.error", "priority": 1,
     "description": "Open error-severity findings (what deny mode rejects)."},
    {"name": "Warnings", "type": "integer", "jsonPath": ".status.summary.bySeverity.warning",
     "priority": 1, "description": "Open warning-severity findings."},
    {"name": "Exempted", "type": "integer", "jsonPath": ".status.exemptions.active", "priority": 1,
     "description": "Exemptions that suppressed a finding at the last audit."},
    {"name": "Last Audit", "type": "date", "jsonPath": ".status.lastAuditTime", "priority": 1,
     "description": "When every matched workload was last audited."},
    {"name": "Message", "type": "string", "jsonPath": f"{_READY}.message", "priority": 1,
     "description": "The Ready condition's message: the audit's size, or why the policy is not enforced."},
]


def render() -> Schema:
    """The CustomResourceDefinition as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Cluster",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": SINGULAR,
                      "shortNames": SHORT_NAMES, "categories": CATEGORIES},
            "versions": [{
                "name": API_VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": _PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": _root_schema()},
            }],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Shared sub-schemas (selectors, severities) are written out in full: no `&id001` anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _quote_go_booleans(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """kubectl reads YAML 1.1: an unquoted `y` or `off` (plain strings to PyYAML) would be a boolean."""
    style = "'" if GO_BOOL.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_NoAliasDumper.add_representer(str, _quote_go_booleans)


def render_yaml() -> str:
    body = yaml.dump(render(), Dumper=_NoAliasDumper, sort_keys=False, width=120, allow_unicode=True)
    return HEADER + body


# -- command line ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readiness.crd", description="Render the CRD.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write {CRD_PATH.name}")
    action.add_argument("--check", action="store_true", help="exit 1 when the committed CRD is stale")
    parser.add_argument("--path", type=Path, default=CRD_PATH, help="the CRD file (default: %(default)s)")
    args = parser.parse_args(argv)
    text = render_yaml()
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(text)
        return 0
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is stale: run `python -m readiness.crd --write`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
