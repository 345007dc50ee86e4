"""The exact reading of a YAML document, the way Kubernetes reads it, on PyYAML.

sigs.k8s.io/yaml uses go-yaml v2, which reads plain scalars the YAML 1.1 way (`0644` is 420, `yes`/`on`/`y`
are booleans, `<<` merges mappings; timestamps stay strings). `KubeLoader` is PyYAML (libyaml's C loader
when present) with go-yaml v2's resolvers, and with duplicate keys rejected as the API server rejects
duplicate fields.

readiness.loader reads most documents with yaml-rs and comes here only for what yaml-rs cannot settle
(merge keys, explicit tags, block scalars next to a YAML 1.1 scalar) and for the error message of a
document yaml-rs rejects. So this module, and PyYAML with it, is imported only then: about 20 ms that
most CLI runs never pay.
"""

from __future__ import annotations

from typing import Any

import yaml

from readiness.loader import GO_BOOL, GO_NUMBER, GO_TRUE, SPECIAL_FLOAT, YamlSyntaxError, go_number

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

BOOL_TAG = "tag:yaml.org,2002:bool"
FLOAT_TAG = "tag:yaml.org,2002:float"
NUMBER_TAG = "tag:readiness.dev,2024:go-number"
"""Plain scalars that start like a number: go-yaml decides int, float or string by trying to parse them."""

_DROPPED_TAGS = frozenset({
    "tag:yaml.org,2002:timestamp",  # go-yaml hands timestamps to untyped code as strings
    "tag:yaml.org,2002:value",  # PyYAML's `=`: a plain string for go-yaml
    "tag:yaml.org,2002:int", FLOAT_TAG, BOOL_TAG,  # replaced by go-yaml's rules below
})


class KubeLoader(_BaseLoader):  # type: ignore[misc]
    """PyYAML with go-yaml v2's implicit types, timestamps left as strings, and duplicate keys rejected."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_TAGS]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self._reject_duplicate_keys(node)
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]

    def _reject_duplicate_keys(self, node: yaml.MappingNode) -> None:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys may be overridden: that is what `<<` is for
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable complex key: PyYAML reports it itself
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (Kubernetes rejects duplicate fields)",
                    key_node.start_mark)


def _construct_go_bool(loader: Any, node: yaml.ScalarNode) -> bool:
    return str(node.value) in GO_TRUE


def _construct_go_number(loader: Any, node: yaml.ScalarNode) -> int | float | str:
    return go_number(str(node.value))


KubeLoader.add_implicit_resolver(BOOL_TAG, GO_BOOL, list("yYnNtTfFoO"))
KubeLoader.add_implicit_resolver(FLOAT_TAG, SPECIAL_FLOAT, list("-+."))
KubeLoader.add_implicit_resolver(NUMBER_TAG, GO_NUMBER, list("-+.0123456789"))
KubeLoader.add_constructor(BOOL_TAG, _construct_go_bool)
KubeLoader.add_constructor(NUMBER_TAG, _construct_go_number)


def parse(text: str) -> Any:
    """One document. Raises YamlSyntaxError with PyYAML's problem and the line in `text` it names."""
    try:
        return yaml.load(text, Loader=KubeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        context = getattr(error, "context", None)
        message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        raise YamlSyntaxError(message, mark.line if mark is not None else None) from None
