"""Pure parts of uninstall (issue 13, item 8): which keys `readiness cleanup` removes, the patch it sends,
and the peering rule that keeps a standby replica's periodic audit quiet. The cluster side is
tests/cluster/test_uninstall.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from readiness import cli, uninstall
from readiness.controller import output
from readiness.controller.ticker import active_by_peering

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def seen(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat()


def test_only_our_keys_are_removed() -> None:
    meta = {"name": "web", "namespace": "shop",
            "annotations": {output.VERDICT: "violating", output.VIOLATIONS: "[]", "readiness.dev/exempt": "x",
                            "team": "a"},
            "labels": {output.COMPLIANT_LABEL: "false", "app": "web"}}
    change = uninstall.workload_change("Deployment", "/apis/apps/v1/namespaces/shop/deployments/web", meta)
    assert change is not None
    assert change.patch() == {"metadata": {"annotations": {output.VIOLATIONS: None, output.VERDICT: None},
                                           "labels": {output.COMPLIANT_LABEL: None}}}
    assert change.describe() == ("Deployment shop/web: readiness.dev/violations, readiness.dev/verdict, "
                                 "readiness.dev/compliant (label)")


def test_a_workload_without_our_keys_is_left_alone() -> None:
    meta = {"name": "web", "annotations": {"readiness.dev/exempt": "x"}, "labels": {"app": "web"}}
    assert uninstall.workload_change("Deployment", "/x", meta) is None


def test_only_kopfs_finalizer_is_removed_from_a_policy() -> None:
    meta = {"name": "p", "finalizers": ["example.com/keep", uninstall.KOPF_FINALIZER]}
    change = uninstall.policy_change("/apis/readiness.dev/v1alpha1/readinesspolicies/p", meta)
    assert change is not None and change.patch() == {"metadata": {"finalizers": ["example.com/keep"]}}
    alone = uninstall.policy_change("/x", {"name": "p", "finalizers": [uninstall.KOPF_FINALIZER]})
    assert alone is not None and alone.patch() == {"metadata": {"finalizers": None}}
    assert uninstall.policy_change("/x", {"name": "p"}) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("example.com/v1/widgets", ("example.com", "v1", "widgets")),
    ("v1/pods", ("", "v1", "pods")),
])
def test_resource_syntax(text: str, expected: tuple[str, str, str]) -> None:
    assert uninstall.parse_resource(text) == expected


@pytest.mark.parametrize("text", ["widgets", "a/b/c/d", "example.com//widgets"])
def test_a_bad_resource_is_one_line(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["cleanup", "--resource", text]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "GROUP/VERSION/PLURAL" in err


def test_collection_paths() -> None:
    assert uninstall.collection_path("", "v1", "pods", "shop") == "/api/v1/namespaces/shop/pods"
    assert uninstall.collection_path("apps", "v1", "deployments") == "/apis/apps/v1/deployments"


def test_the_report_says_dry_run_and_counts() -> None:
    import io
    change = uninstall.Change("Deployment", "shop", "web", "/x", (output.VERDICT,))
    out = io.StringIO()
    uninstall.report(uninstall.Outcome([change], policies_left=1), applied=False, out=out)
    text = out.getvalue()
    assert "would remove: Deployment shop/web: readiness.dev/verdict" in text
    assert "1 ReadinessPolicies still exist" in text
    assert "dry run: nothing changed" in text


@pytest.mark.parametrize(("status", "active"), [
    (None, True),
    ({}, True),
    ({"me": {"priority": 5, "lifetime": 60, "lastseen": seen(1)}}, True),
    ({"me": {"priority": 5}, "other": {"priority": 3, "lifetime": 60, "lastseen": seen(1)}}, True),
    ({"me": {"priority": 5}, "other": {"priority": 9, "lifetime": 60, "lastseen": seen(1)}}, False),
    ({"me": {"priority": 5}, "other": {"priority": 5, "lifetime": 60, "lastseen": seen(1)}}, False),
    ({"me": {"priority": 5}, "dead": {"priority": 9, "lifetime": 60, "lastseen": seen(61)}}, True),
    ({"me": {"priority": 5}, "junk": {"priority": "high"}}, True),
], ids=["no-status", "empty", "alone", "lower-peer", "higher-peer", "same-priority", "dead-peer", "junk"])
def test_a_replica_audits_periodically_only_when_peering_lets_it(status: dict[str, object] | None,
                                                                 active: bool) -> None:
    assert active_by_peering(status, "me", 5, NOW) is active


def test_a_policy_report_is_deleted_not_patched() -> None:
    change = uninstall.Change("PolicyReport", "shop", "readiness-123", "/x", delete=True)
    assert change.describe() == "PolicyReport shop/readiness-123 (the object)"
