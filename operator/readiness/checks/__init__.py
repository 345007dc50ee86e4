"""The check catalog. Each check lives in its own sub-package, next to its fixtures; importing this
package discovers them all, so adding a check touches only its own folder."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from readiness.checks.base import CATALOG, Category, Check, CheckParams, Severity


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.ispkg:
            importlib.import_module(f"{__name__}.{module.name}")


_discover()


def all_checks() -> list[Check[Any]]:
    """The catalog, ordered by category and id (the order of listings and docs)."""
    order = list(Category)
    return sorted(CATALOG.values(), key=lambda c: (order.index(c.category), c.id))


def get_check(check_id: str) -> Check[Any]:
    """Look a check up by id; the KeyError names the closest ids."""
    try:
        return CATALOG[check_id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(check_id, CATALOG, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown check id {check_id!r}{hint}") from None


__all__ = ["CATALOG", "Category", "Check", "CheckParams", "Severity", "all_checks", "get_check"]
