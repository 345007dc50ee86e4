"""Issue 12, CLI side: hostile input gets a finding or one clear line naming the file, the line and what
is wrong; one bad object never stops the others from being judged; memory and output stay proportional
to the input; the command returns only when all its work is done. Each test runs the CLI as users run it
(a subprocess of the installed `readiness` script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from readiness.loader import MAX_NESTING

ROOT = Path(__file__).resolve().parents[2]
READINESS = str(Path(sys.executable).with_name("readiness"))

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


def audit(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([READINESS, "audit", *args], input=stdin, capture_output=True, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1"})
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))


def judged(report: str) -> list[str]:
    return [w["name"] for w in json.loads(report)["workloads"]]


def assert_one_clear_line(done: subprocess.CompletedProcess[str], where: str, what: str) -> None:
    errors = [line for line in done.stderr.splitlines() if "nothing was judged" not in line]
    assert errors == [f"readiness: {where}: {what}"], done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


# -- item 4: a malformed PodDisruptionBudget selector --------------------------------------------------------

@pytest.mark.parametrize(("selector", "problem"), [
    ("{matchLabels: [app, web]}",
     "spec.selector.matchLabels: expected a mapping of label to value, got a list"),
    ("{matchExpressions: {key: app}}", "spec.selector.matchExpressions: expected a list, got a dict"),
    ("{matchExpressions: [app]}",
     "spec.selector.matchExpressions: expected a mapping (key, operator, values), got a str"),
    ("{matchExpressions: [{key: app, operator: In, values: 5}]}",
     "spec.selector.matchExpressions: values of key 'app': expected a list, got an int"),
])
def test_a_malformed_pdb_is_named_and_the_rest_judged(tmp_path: Path, selector: str, problem: str) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text("apiVersion: policy/v1\nkind: PodDisruptionBudget\n"
                        "metadata: {name: bad, namespace: shop}\n"
                        f"spec:\n  minAvailable: 1\n  selector: {selector}\n---\n{DEPLOYMENT}")
    done = audit("-f", str(manifest), "-o", "json")
    assert done.returncode == 2  # input the API server would reject: a CI gate must not pass
    assert_one_clear_line(done, f"{manifest}:1", f"PodDisruptionBudget bad: {problem}")
    assert judged(done.stdout) == ["web"]


# -- item 5: nesting depth ---------------------------------------------------------------------------------

DEEP = 25_000


@pytest.mark.parametrize(("name", "text", "line"), [
    ("flow.yaml", "kind: ConfigMap\ndata: " + "[" * DEEP + "]" * DEEP + "\n", 2),
    ("maps.yaml", "kind: ConfigMap\ndata: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n", 2),
    ("block.yaml", "kind: ConfigMap\ndata:\n" + "- " * DEEP + "1\n", 3),
    ("quoted.yaml", "kind: ConfigMap\ndata: " + "['x]', " * DEEP + "]" * DEEP + "\n", 2),
    ("deep.json", '{"kind": "ConfigMap", "data":\n' + "[" * 1000 + "]" * 1000 + "}\n", 2),
])
def test_deep_nesting_is_one_clear_line(tmp_path: Path, name: str, text: str, line: int) -> None:
    manifest = tmp_path / name
    manifest.write_text(text)
    other = tmp_path / "web.yaml"
    other.write_text(DEPLOYMENT)
    done = audit("-f", str(manifest), "-f", str(other), "-o", "json")
    assert done.returncode == 2, done.stderr  # not 139 (a segfault), not an internal error
    language = "JSON" if name.endswith(".json") else "YAML"
    what = f"invalid {language}: nested deeper than {MAX_NESTING} levels"
    assert_one_clear_line(done, f"{manifest}:{line}", what)
    assert judged(done.stdout) == ["web"]


def test_nesting_within_the_bound_is_read(tmp_path: Path) -> None:
    depth = MAX_NESTING - 2
    block = "".join(" " * i + "a:\n" for i in range(depth)) + " " * depth + "a: 1\n"
    (tmp_path / "flow.yaml").write_text("kind: ConfigMap\ndata: " + "[" * depth + "]" * depth + "\n")
    (tmp_path / "block.yaml").write_text("kind: ConfigMap\ndata:\n" + block)
    (tmp_path / "deep.json").write_text('{"kind": "ConfigMap", "data": ' + "[" * depth + "]" * depth + "}")
    (tmp_path / "web.yaml").write_text(DEPLOYMENT)
    done = audit("-f", str(tmp_path), "-o", "json")
    assert done.returncode in (0, 1), done.stderr
    assert done.stderr == "" and judged(done.stdout) == ["web"]


# -- item 6: non-UTF-8 bytes on stdin ----------------------------------------------------------------------

def test_non_utf8_stdin_is_the_same_clean_error_as_a_file(tmp_path: Path) -> None:
    data = b"apiVersion: v1\nkind: Pod\nmetadata: {name: \xff\xfe}\n"
    from_stdin = audit("-f", "-", stdin=data)
    implicit = audit(stdin=data)
    (tmp_path / "bad.yaml").write_bytes(data)
    from_file = audit("-f", str(tmp_path / "bad.yaml"))
    reason = "cannot read: 'utf-8' codec can't decode byte 0xff in position 42: invalid start byte"
    for done, where in ((from_stdin, "-"), (implicit, "-"), (from_file, str(tmp_path / "bad.yaml"))):
        assert done.returncode == 2
        assert_one_clear_line(done, where, reason)


def test_utf8_stdin_with_a_bom_is_read() -> None:
    done = audit("-f", "-", "-o", "json", stdin=b"\xef\xbb\xbf" + DEPLOYMENT.encode())
    assert done.stderr == "" and judged(done.stdout) == ["web"]


# -- item 7: aliases ----------------------------------------------------------------------------------------

def laughs(levels: int) -> str:
    """Billion laughs in a Deployment: each anchor nine aliases of the previous one."""
    anchors = ['    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    anchors += [f"    a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    metadata = "metadata:\n  name: lol\n  namespace: shop\n  annotations:\n" + "\n".join(anchors)
    body = DEPLOYMENT.replace("metadata: {name: web, namespace: shop}", metadata)
    return body.replace("    spec:\n", f"    spec:\n      terminationGracePeriodSeconds: *a{levels}\n")


def test_excessive_aliasing_is_rejected_as_kubernetes_rejects_it(tmp_path: Path) -> None:
    manifest = tmp_path / "lol.yaml"
    manifest.write_text(laughs(7))
    assert len(manifest.read_bytes()) < 800
    done = audit("-f", str(manifest), "-o", "json", timeout=20)
    assert done.returncode == 2
    assert len(done.stdout) < 10_000
    [error] = [line for line in done.stderr.splitlines() if "nothing was judged" not in line]
    assert error.startswith(f"readiness: {manifest}:10: invalid YAML: document contains excessive aliasing")


def test_a_finding_quotes_a_bounded_value(tmp_path: Path) -> None:
    """Aliasing that Kubernetes accepts still must not make a finding's message as large as the value."""
    manifest = tmp_path / "lol.yaml"
    manifest.write_text(laughs(2).replace('["lol"', '["' + "x" * 5000 + '"'))
    done = audit("-f", str(manifest), "-o", "json")
    messages = [f["message"] for w in json.loads(done.stdout)["workloads"] for f in w["findings"]
                if f["check"] == "termination-grace-period"]
    assert messages and all(len(m) < 400 for m in messages), messages


def test_ordinary_anchors_are_read(tmp_path: Path) -> None:
    manifest = tmp_path / "anchors.yaml"
    anchored = DEPLOYMENT.replace("metadata: {labels: {app: web}}", "metadata: {labels: &l {app: web}}")
    manifest.write_text(anchored.replace("    spec:\n", "    spec:\n      nodeSelector: *l\n"))
    done = audit("-f", str(manifest), "-o", "json")
    assert done.stderr == "" and judged(done.stdout) == ["web"]


# -- item 8: characters XML forbids -----------------------------------------------------------------------

def test_junit_stays_valid_xml_with_control_characters(tmp_path: Path) -> None:
    manifest = tmp_path / "ctl.yaml"
    named = DEPLOYMENT.replace("name: web, namespace: shop", 'name: "we\\x07b", namespace: "s\\x01"')
    manifest.write_text(named.replace("- name: web", '- name: "we\\x07b\\x1b\\x0c"'))
    done = audit("-f", str(manifest), "-o", "junit")
    root = ET.fromstring(done.stdout.encode())
    cases = list(root.iter("testcase"))
    assert cases and all(case.get("classname") == "Deployment s\\x01/we\\x07b" for case in cases)
    assert any("container we\\x07b\\x1b\\x0c " in (out.text or "") for out in root.iter("system-out"))


# -- item 19: no worker outlives the command ---------------------------------------------------------------

SUBREAPER = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans of the audit become ours
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
child.wait()
try:  # anything left, running or a zombie, was orphaned: it outlived the command
    left = os.waitpid(-1, os.WNOHANG)
except ChildProcessError:
    left = None
print("clean" if left is None else f"left behind: {left}", child.returncode)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a subreaper is Linux's")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the parallel path needs two CPUs")
def test_the_parallel_path_leaves_no_process_behind(tmp_path: Path) -> None:
    manifests = tmp_path / "many.yaml"
    with manifests.open("w") as out:
        generate = [sys.executable, str(ROOT / "benchmarks" / "generate.py"), "2500"]
        subprocess.run(generate, stdout=out, check=True)
    from readiness.report.parallel import PARALLEL_MIN_BYTES

    assert manifests.stat().st_size >= PARALLEL_MIN_BYTES
    env = {**{k: v for k, v in os.environ.items() if k != "READINESS_SERIAL"}, "READINESS_PARALLEL": "1"}
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", SUBREAPER, READINESS, "audit", "-f", str(manifests),
                               "-o", "json"], capture_output=True, text=True, env=env, timeout=120)
        assert done.stdout.split() == ["clean", "1"], done.stdout + done.stderr


# -- half a UTF-16 pair in JSON (found next to item 6) ------------------------------------------------------

@pytest.mark.parametrize("output", ["text", "json", "sarif", "junit"])
def test_a_lone_surrogate_in_json_is_read_as_go_reads_it(tmp_path: Path, output: str) -> None:
    manifest = tmp_path / "pod.json"
    manifest.write_text('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a\\ud800"}, '
                        '"spec": {"containers": [{"name": "x\\udc00", "image": "b"}]}}')
    done = audit("-f", str(manifest), "-o", output)
    assert done.returncode == 1 and done.stderr == "", done.stderr
    assert "a\ufffd" in done.stdout


def test_the_parallel_path_runs_only_with_a_free_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """It pays only when the second core is free (benchmarks/cli_bench.py --parallel-vs-serial)."""
    from readiness.report import parallel

    monkeypatch.delenv(parallel.SERIAL_ENV, raising=False)
    monkeypatch.delenv(parallel.PARALLEL_ENV, raising=False)
    monkeypatch.setattr(parallel, "_cpus", lambda: 2)
    size = 10 * parallel.PARALLEL_MIN_BYTES
    monkeypatch.setattr(parallel, "_load", lambda: 0.4)
    assert parallel.worth_parallel(size) and not parallel.worth_parallel(parallel.PARALLEL_MIN_BYTES - 1)
    monkeypatch.setattr(parallel, "_load", lambda: 3.0)  # other jobs hold both cores
    assert not parallel.worth_parallel(size)
    monkeypatch.setenv(parallel.PARALLEL_ENV, "1")
    assert parallel.worth_parallel(size)
