"""Issue 13, item 14: admission warnings and deny messages are cut at a word (never mid-word) within their
bound, marked with an ellipsis; the deny message's "Fix:" is a whole first sentence; every warning names
its object."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from readiness.checks import CATALOG
from readiness.checks.base import Category, Severity
from readiness.engine import Engine, Finding
from readiness.policy import ReadinessPolicy
from readiness.webhook import _clip, fix_hint, format_warning, review, subject_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_long_warning_is_cut_after_a_whole_word() -> None:
    message = "the container image reference uses a mutable tag that the registry can overwrite " * 3
    line = format_warning("prod", Finding("image-tag-mutable", Category.IMAGES, Severity.WARNING,
                                          message, "app"), width=120, subject="Deployment/web")
    assert len(line) <= 120 and line.endswith("...")
    kept = line.removesuffix("...").removeprefix("[prod] Deployment/web: image-tag-mutable: ")
    assert message.startswith(kept) and message[len(kept)] == " "  # the cut fell between two words


def test_punctuation_before_the_cut_is_dropped() -> None:
    assert _clip("alpha beta, gamma delta", 16) == "alpha beta..."


def test_one_long_token_is_cut_inside_rather_than_dropped() -> None:
    line = _clip("[strict] run-as-root: " + "x" * 300, 120)
    assert len(line) == 120 and line.startswith("[strict] run-as-root: xxx")


@given(st.text(alphabet=st.sampled_from("ab ,.:;("), max_size=300), st.integers(min_value=1, max_value=200))
def test_clip_keeps_its_bound_and_its_text(text: str, width: int) -> None:
    line = _clip(text, width)
    flat = " ".join(text.split())
    assert len(line) <= max(width, 4)
    assert line == flat or (line.endswith("...") and flat.startswith(line.removesuffix("...")))


@pytest.mark.parametrize("check_id", sorted(CATALOG))
def test_every_fix_hint_is_a_whole_sentence(check_id: str) -> None:
    """The remediation's first sentence spans several lines of its Markdown: the hint joins them, and
    ends where the sentence ends (before the `:` that introduces the snippet), never mid-word."""
    hint = fix_hint(check_id)
    assert hint and not hint.endswith("...")
    remediation = " ".join(CATALOG[check_id].remediation.replace("`", "").split())
    if not hint.startswith("set "):
        assert remediation.startswith(hint)
        assert remediation[len(hint)] in ".:;"


def test_a_hint_from_a_snippet_takes_only_the_first_block() -> None:
    assert fix_hint("service-account-token-automount") == "set spec: automountServiceAccountToken: false"


def test_a_parenthesis_does_not_end_the_sentence() -> None:
    assert "Kubernetes 1.30+), and keep terminationGracePeriodSeconds" in fix_hint("prestop-hook-missing")


def deployment(name: str = "legacy-web") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "web:1.0"}]}}}}


def test_every_warning_names_its_workload() -> None:
    engine = Engine(ReadinessPolicy.model_validate({"metadata": {"name": "prod"},
                                                    "spec": {"enforcement": "warn"}}))
    warnings = review([engine], deployment(), {}, "CREATE", NOW).warnings
    assert len(warnings) > 2
    assert all(line.startswith(("[prod] Deployment/legacy-web: ", "[readiness] Deployment/legacy-web: "))
               for line in warnings), warnings
    assert all(len(line) <= 120 for line in warnings)


def test_subject_of_odd_objects() -> None:
    assert subject_of({"kind": "Pod", "metadata": {"generateName": "web-"}}) == "Pod/web-*"
    assert subject_of({"kind": "Deployment", "metadata": "nonsense"}) == "Deployment"
    assert subject_of({"metadata": {"name": "x"}}) == "object/x"
