"""Command-line help generated from documented settings fields: the docstring is the single source.

Settings docstrings are written in flag language (`0 disables it`, `unset: ...`), so that they read the
same in the code and in `--help`. This module adds what a flag's help needs besides: field names turned
into flags, the negation of a `--no-*` flag, and the default as the user would type it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_FIELD_REFERENCE = re.compile(r"``?([a-z][a-z0-9]*(?:_[a-z0-9]+)+|[a-z]+)``?")


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> docstring, read from the source (dataclasses do not keep attribute docstrings)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)):
            docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def show_default(value: Any) -> str:
    """A default as it is typed on the command line: `5`, `0.5`, `a,b`, `k=v`, `unset`, `none`."""
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value) or "none"
    return str(value)


def flag_text(doc: str, flags: Mapping[str, str]) -> str:
    """`doc` with ``double`` backticks made single and field names (`retry_max_delay`) made the flags
    that set them (`--retry-max-delay`); `%` escaped for argparse."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"`{flags[name]}`" if name in flags else f"`{name}`"

    text = _FIELD_REFERENCE.sub(replace, doc).replace("``", "`")
    return text.replace("%", "%%")


def negated(doc: str) -> str:
    """The help of `--no-X` from the docstring of X, whose first sentence says what X does:
    "Write the label ..." -> "Do not write the label ..."."""
    return "Do not " + doc[:1].lower() + doc[1:]


def with_default(text: str, default: str) -> str:
    """`text (default: D)`, unless the text already states its default."""
    if "(default" in text.lower():
        return text
    return f"{text.rstrip()} (default: {default})"


def dataclass_defaults(cls: type) -> dict[str, Any]:
    """Field name -> default value of a dataclass (default factories called)."""
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.default is not dataclasses.MISSING:
            values[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            values[item.name] = item.default_factory()
    return values
