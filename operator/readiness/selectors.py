"""Kubernetes label selectors and namespace globs, compiled once and matched many times."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

LabelMatcher = Callable[[Mapping[str, str]], bool]


def _always(_labels: Mapping[str, str]) -> bool:
    return True


def _requirement(expr: Any) -> LabelMatcher:
    if not isinstance(expr, Mapping):
        raise ValueError("matchExpressions: expected a mapping (key, operator, values), "
                         f"got {type_phrase(expr)}")
    key = str(expr.get("key", ""))
    operator = expr.get("operator")
    raw_values = expr.get("values") or ()
    if not isinstance(raw_values, list | tuple):
        raise ValueError(f"matchExpressions: values of key {key!r}: expected a list, "
                         f"got {type_phrase(raw_values)}")
    values = frozenset(str(v) for v in raw_values)
    if operator == "In":
        return lambda labels: key in labels and labels[key] in values
    if operator == "NotIn":
        return lambda labels: key not in labels or labels[key] not in values
    if operator == "Exists":
        return lambda labels: key in labels
    if operator == "DoesNotExist":
        return lambda labels: key not in labels
    raise ValueError(f"matchExpressions: unknown operator {operator!r} (key {key!r})")


def compile_selector(selector: Mapping[str, Any] | None) -> LabelMatcher:
    """Compile a LabelSelector. None or {} selects everything, as in the Kubernetes API."""
    if not selector:
        return _always
    raw_labels = selector.get("matchLabels") or {}
    raw_expressions = selector.get("matchExpressions") or ()
    if not isinstance(raw_labels, Mapping):  # the API server rejects these: say what is wrong, never crash
        raise ValueError(f"matchLabels: expected a mapping of label to value, got {type_phrase(raw_labels)}")
    if not isinstance(raw_expressions, list | tuple):
        raise ValueError(f"matchExpressions: expected a list, got {type_phrase(raw_expressions)}")
    match_labels = {str(k): str(v) for k, v in raw_labels.items()}
    requirements = [_requirement(e) for e in raw_expressions]
    items = tuple(match_labels.items())

    def matches(labels: Mapping[str, str]) -> bool:
        for key, value in items:
            if labels.get(key) != value:
                return False
        return all(requirement(labels) for requirement in requirements)

    return matches


def type_phrase(value: Any) -> str:
    """`a list`, `an int`, `null`: a value's type, for one-line errors about selectors and budgets."""
    name = type(value).__name__
    return "null" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


class GlobSet:
    """A set of shell-style globs (`team-*`, `prod-?`), compiled into one regular expression."""

    __slots__ = ("_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        joined = "|".join(fnmatch.translate(p) for p in self.patterns)
        self._regex = re.compile(joined) if joined else None

    def __bool__(self) -> bool:
        return self._regex is not None

    def matches(self, value: str) -> bool:
        return self._regex is not None and self._regex.match(value) is not None
