"""Our pydantic models, cheap to load: built when first used, documented when documentation is asked for.

The policy models load wherever a policy is read (the operator, the webhook, `readiness audit --policy`;
an audit with the built-in policy loads none of them, see `Engine.builtin`), and about sixty classes are
made at import. Two things pydantic would otherwise do for each class then cost 0.07 s:

* Building the validator. Our models set `defer_build=True`, so pydantic builds a model's
  validator when something first validates it (a user's policy, the operator's first policy event).
  `trusted()` makes model instances from values we wrote ourselves without building anything.
* Reading attribute docstrings (`use_attribute_docstrings`), which walks frames and tokenizes each
  class's source. Only the CRD, the docs and `readiness explain` print those texts, so they look them up
  here (`docstring()`), parsing each source file once. The checks' parameters (plain dataclasses, see
  readiness.checks.base.CheckParams) document their fields the same way.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import sys
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def trusted(model: type[M], **values: Any) -> M:
    """`model(**values)` without validation, for values this code base wrote (the built-in policy).
    Fields left out take their defaults; a default made by a model class
    (`Field(default_factory=Match)`) is made by `trusted()` too, so that it builds no validator either.
    Tests check that the result equals the validated one."""
    for name, field in model.model_fields.items():
        if name in values or (field.alias is not None and field.alias in values):
            continue
        factory = field.default_factory
        if isinstance(factory, type) and issubclass(factory, BaseModel):
            values[name] = trusted(factory)
    return model.model_construct(**values)


def docstring(model: type, field: str) -> str | None:
    """The docstring under the field's annotation, in the nearest class of `model`'s MRO that annotates
    it (what pydantic's `use_attribute_docstrings` would have made the field's description)."""
    for cls in model.__mro__:
        if field in inspect.get_annotations(cls):
            return _class_docstrings(cls).get(field)
    return None


def described(model: type, field: str) -> str | None:
    """The field's description: the one given in `Field(description=...)` (pydantic models), else its
    docstring (models and check parameters)."""
    info = model.model_fields.get(field) if issubclass(model, BaseModel) else None
    explicit = info.description if info is not None else None
    return explicit or docstring(model, field)


def _class_docstrings(cls: type) -> dict[str, str]:
    module = sys.modules.get(cls.__module__)
    filename = getattr(module, "__file__", None)
    if not filename:
        return {}
    return _file_docstrings(filename).get(cls.__qualname__, {})


@functools.cache
def _file_docstrings(filename: str) -> dict[str, dict[str, str]]:
    """{class qualname: {attribute: docstring}} for the classes of one source file (nested ones too)."""
    try:
        with open(filename, encoding="utf-8") as source:
            tree = ast.parse(source.read(), filename)
    except (OSError, SyntaxError, ValueError):  # no source (a zipped or frozen install): no docstrings
        return {}
    found: dict[str, dict[str, str]] = {}
    _collect(tree.body, "", found)
    return found


def _collect(body: list[ast.stmt], prefix: str, found: dict[str, dict[str, str]]) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef):
            qualname = prefix + node.name
            found.setdefault(qualname, _attribute_docstrings(node.body))
            _collect(node.body, qualname + ".", found)


def _attribute_docstrings(body: list[ast.stmt]) -> dict[str, str]:
    """`name: type` (with or without a value) followed by a string statement, as pydantic reads them."""
    docs: dict[str, str] = {}
    for previous, current in itertools.pairwise(body):
        if (isinstance(previous, ast.AnnAssign) and isinstance(previous.target, ast.Name)
                and isinstance(current, ast.Expr) and isinstance(current.value, ast.Constant)
                and isinstance(current.value.value, str)):
            docs[previous.target.id] = inspect.cleandoc(current.value.value)
    return docs
