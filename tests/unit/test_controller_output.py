"""The workload output contract: annotations, label and Events, as pure functions."""

from __future__ import annotations

import json

from readiness.checks.base import Category, Severity
from readiness.controller import output
from readiness.controller.output import NOTHING, Outputs, PolicyVerdict
from readiness.engine import Finding


def finding(check: str = "readiness-probe-missing", container: str | None = "web",
            severity: Severity = Severity.WARNING, message: str = "no readiness probe") -> Finding:
    return Finding(check, Category.PROBES, severity, message, container)


def test_violating_workload_gets_all_three_annotations_and_the_label() -> None:
    verdicts = [PolicyVerdict("baseline", (finding(),)), PolicyVerdict("strict", ())]
    desired = output.desired_outputs(verdicts, 4096)
    assert desired.annotations[output.VERDICT] == "violating"
    assert desired.annotations[output.POLICIES] == "baseline,strict"
    assert json.loads(desired.annotations[output.VIOLATIONS]) == [
        {"policy": "baseline", "check": "readiness-probe-missing", "container": "web",
         "severity": "warning", "message": "no readiness probe"}]
    assert desired.label == "false"


def test_compliant_workload_has_an_empty_list_and_label_true() -> None:
    desired = output.desired_outputs([PolicyVerdict("baseline", ())], 4096)
    assert desired.annotations == {output.VERDICT: "compliant", output.POLICIES: "baseline",
                                   output.VIOLATIONS: "[]"}
    assert desired.label == "true"


def test_no_matching_policy_means_no_keys_at_all() -> None:
    assert output.desired_outputs([], 4096) == NOTHING


def test_reporting_switches_are_per_policy() -> None:
    verdicts = [PolicyVerdict("quiet", (finding(),), annotations=False, labels=False),
                PolicyVerdict("loud", ())]
    desired = output.desired_outputs(verdicts, 4096)
    assert desired.annotations[output.POLICIES] == "loud"
    assert desired.annotations[output.VERDICT] == "compliant"
    assert desired.label == "true"
    only_labels = output.desired_outputs([PolicyVerdict("p", (finding(),), annotations=False)], 4096)
    assert only_labels == Outputs({}, "false")


def test_truncated_list_stays_within_bound_and_says_so() -> None:
    findings = tuple(finding(check=f"check-{i:03d}", message="x" * 150) for i in range(100))
    text = output.violations_json([PolicyVerdict("p", findings)], 4096)
    assert len(text.encode()) <= 4096
    data = json.loads(text)
    assert "truncated" in data[-1]
    assert data[-1]["truncated"] + len(data) - 1 == 100
    keys, omitted = output.parse_violations(text)
    assert len(keys) == len(data) - 1 and omitted == data[-1]["truncated"]


def test_truncation_keeps_the_most_severe_first() -> None:
    findings = tuple(finding(check=f"c{i}", severity=Severity.INFO, message="m" * 100) for i in range(50))
    worst = finding(check="zzz", severity=Severity.ERROR)
    data = json.loads(output.violations_json([PolicyVerdict("p", (*findings, worst))], 512))
    assert data[0]["check"] == "zzz"


def test_long_messages_are_cut() -> None:
    data = json.loads(output.violations_json([PolicyVerdict("p", (finding(message="y" * 1000),))], 4096))
    assert len(data[0]["message"]) == output.MESSAGE_MAX_CHARS


def test_merge_patch_touches_only_what_differs() -> None:
    desired = output.desired_outputs([PolicyVerdict("p", (finding(),))], 4096)
    assert output.merge_patch(desired, desired) is None
    patch = output.merge_patch(NOTHING, desired)
    assert patch == {"metadata": {"annotations": dict(desired.annotations),
                                  "labels": {output.COMPLIANT_LABEL: "false"}}}
    removal = output.merge_patch(desired, NOTHING)
    assert removal == {"metadata": {"annotations": dict.fromkeys(desired.annotations),
                                    "labels": {output.COMPLIANT_LABEL: None}}}


def test_observed_outputs_ignore_other_keys() -> None:
    observed = Outputs.observed({"a": "1", output.VERDICT: "compliant"}, {"app": "x"})
    assert observed == Outputs({output.VERDICT: "compliant"}, None)


def test_new_findings_post_one_warning_naming_them() -> None:
    verdicts = [PolicyVerdict("p", (finding(), finding(check="cpu-limit-missing")))]
    intent = output.event_intent(verdicts, frozenset(), 0)
    assert intent is not None and intent.type == "Warning" and intent.reason == "ReadinessViolation"
    assert "p/readiness-probe-missing (web)" in intent.message and "p/cpu-limit-missing" in intent.message


def test_unchanged_findings_post_nothing_even_after_a_restart() -> None:
    verdicts = [PolicyVerdict("p", (finding(),))]
    annotation = output.desired_outputs(verdicts, 4096).annotations[output.VIOLATIONS]
    assert output.event_intent(verdicts, *output.parse_violations(annotation)) is None


def test_fixed_findings_post_restored_once() -> None:
    before = output.finding_keys([PolicyVerdict("p", (finding(),))])
    intent = output.event_intent([PolicyVerdict("p", ())], before, 0)
    assert intent is not None and (intent.type, intent.reason) == ("Normal", "ReadinessRestored")
    assert output.event_intent([PolicyVerdict("p", ())], frozenset(), 0) is None


def test_events_can_be_switched_off_and_ignore_other_policies() -> None:
    assert output.event_intent([PolicyVerdict("p", (finding(),), events=False)], frozenset(), 0) is None
    gone = frozenset({("deleted-policy", "readiness-probe-missing", "web")})
    assert output.event_intent([PolicyVerdict("p", ())], gone, 0) is None


def test_truncated_previous_annotation_does_not_reannounce_hidden_findings() -> None:
    findings = tuple(finding(check=f"c{i}") for i in range(10))
    listed = frozenset(output.finding_key("p", f) for f in findings[:3])
    assert output.event_intent([PolicyVerdict("p", findings)], listed, 7) is None
    grown = (*findings, finding(check="c-new"))
    assert output.event_intent([PolicyVerdict("p", grown)], listed, 7) is not None


def test_unreadable_annotation_counts_as_nothing() -> None:
    assert output.parse_violations("{not json") == (frozenset(), 0)
    assert output.parse_violations(None) == (frozenset(), 0)
