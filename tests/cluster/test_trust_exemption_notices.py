"""Issue 11, item 3, in the real cluster: a policy with `allowWorkloadExemptions: false` ignores a
workload's exemption annotation, and the operator says so on the workload (`readiness.dev/notices`),
as the CLI and the admission webhook do; the notice goes when the annotation goes."""

from __future__ import annotations

import json

import pytest

from readiness.controller import output
from readiness.engine import EXEMPT_ANNOTATION, EXEMPT_REASON_ANNOTATION
from readiness.envtest import Kubectl

from .conftest import OperatorHandle, annotations_of, deployment_yaml, policy_yaml, wait_until

pytestmark = pytest.mark.cluster


def test_operator_writes_that_it_ignored_the_annotation_and_why(
        kubectl: Kubectl, namespace: str, operator_runner: OperatorHandle, unique: str) -> None:
    policy = f"central-{unique}"
    kubectl("apply", "-f", "-", input=policy_yaml(policy, [namespace]))
    exempt = {EXEMPT_ANNOTATION: "readiness-probe-missing", EXEMPT_REASON_ANNOTATION: "legacy, see TICKET-1"}
    kubectl("apply", "-f", "-", input=deployment_yaml("web", namespace, annotations=exempt))

    def notices() -> list[dict[str, str]] | None:
        text = annotations_of(kubectl, namespace, "web").get(output.NOTICES)
        return json.loads(text) if text else None

    wait_until(lambda: notices() is not None, 20, "the notices annotation")
    assert notices() == [{"policy": policy, "notice": f"{EXEMPT_ANNOTATION} ignored: policy {policy} has "
                                                      "allowWorkloadExemptions: false"}]
    assert annotations_of(kubectl, namespace, "web")[output.VERDICT] == "violating"  # not waived
    kubectl("annotate", "deployment", "web", "-n", namespace, f"{EXEMPT_ANNOTATION}-",
            f"{EXEMPT_REASON_ANNOTATION}-")
    wait_until(lambda: notices() is None, 20, "the notices annotation to go")
