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

from readiness.loader import (
    GO_BOOL,
    GO_NUMBER,
    GO_TRUE,
    MAX_NESTING,
    SPECIAL_FLOAT,
    YamlSyntaxError,
    go_number,
    may_nest_deeply,
    too_deep_message,
)

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


_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def too_deep_at(text: str, limit: int) -> int | None:
    """The line (0-based) where `text`'s collections first nest deeper than `limit`, from the parser's
    events: libyaml's parser keeps its own stack, unlike the composer, which recurses in C (and crashed at
    ~25,000 levels). None when they never do, or when the document is invalid before that."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, _STARTS):
                depth += 1
                if depth > limit:
                    return _line(event)
            elif isinstance(event, _ENDS):
                depth -= 1
    except yaml.YAMLError:  # `parse` reports it
        return None
    return None


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return int(mark.line) if mark is not None else 0


_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000


def _allowed_alias_ratio(nodes: int) -> float:
    """go-yaml's allowedAliasRatio: 99% of a document's nodes may come from aliases up to 400,000 nodes,
    sliding down to 10% at 4,000,000."""
    if nodes <= _ALIAS_RATIO_LOW:
        return 0.99
    if nodes >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (nodes - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def excessive_aliasing(text: str) -> tuple[int, str] | None:
    """(line, 0-based; message) when aliases would expand `text` the way go-yaml (so the API server)
    refuses: "document contains excessive aliasing", a billion-laughs document. Counted from the parser's
    events, never expanded: each alias counts the nodes of what it names. None otherwise (or when the
    document is invalid: the parser reports that)."""
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[None, 0]]  # [anchor, nodes so far] of each open collection
    aliased = total = 0  # go-yaml's aliasCount and decodeCount
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, _STARTS):
                stack.append([event.anchor, 1])
                total += 1
                continue
            if isinstance(event, _ENDS):
                anchor, nodes = stack.pop()
            elif isinstance(event, yaml.AliasEvent):
                anchor, nodes = None, sizes.get(event.anchor or "", 1)
                aliased += nodes
                total += nodes
            elif isinstance(event, yaml.ScalarEvent):
                anchor, nodes = event.anchor, 1
                total += 1
            else:
                continue
            if anchor is not None:
                sizes[anchor] = nodes
            stack[-1][1] += nodes
            if aliased > 100 and total > 1000 and aliased / total > _allowed_alias_ratio(total):
                return _line(event), (f"document contains excessive aliasing (its aliases expand to "
                                      f"{aliased:,} nodes; Kubernetes rejects it too)")
    except yaml.YAMLError:
        return None
    return None


def parse(text: str) -> Any:
    """One document. Raises YamlSyntaxError with PyYAML's problem and the line in `text` it names, or
    when it nests deeper than readiness.loader.MAX_NESTING (checked first: the composer recurses)."""
    if may_nest_deeply(text):
        line = too_deep_at(text, MAX_NESTING)
        if line is not None:
            raise YamlSyntaxError(f"invalid YAML: {too_deep_message()}", line)
    try:
        return yaml.load(text, Loader=KubeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        context = getattr(error, "context", None)
        message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        raise YamlSyntaxError(message, mark.line if mark is not None else None) from None
