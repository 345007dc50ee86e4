"""`readiness audit` in CI pipelines, run as a pipeline runs it: a real subprocess on real files.

A repository's directories hold more than manifests (what a walk skips, and why), --exclude and ignore
files, --output-file, --only-failing, --color, --version, shell completion, and the kubectl plugin.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPLIANT = ROOT / "examples" / "workloads" / "compliant"
VIOLATING = ROOT / "examples" / "workloads" / "non-compliant"
BIN = Path(sys.executable).parent
ANSI = "\033["


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
        command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([*(command or [sys.executable, "-m", "readiness.cli"]), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120, check=False, env={**environment, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


MKDOCS = """site_name: docs
markdown_extensions:
  - pymdownx.emoji:
      emoji_index: !!python/name:material.extensions.emoji.twemoji
"""
CHART_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
{{- if .Values.extra }}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository as CI checks it out: one compliant Deployment among files that are no manifests."""
    shutil.copy(COMPLIANT / "web-deployment.yaml", write(tmp_path / "k8s" / "web.yaml", ""))
    write(tmp_path / "values.yaml", "replicaCount: 3\nimage: {tag: latest}\n")
    write(tmp_path / "mkdocs.yml", MKDOCS)  # does not even parse: a Python tag
    write(tmp_path / ".pre-commit-config.yaml", "repos: []\n")  # hidden
    write(tmp_path / ".github" / "workflows" / "ci.yaml", "on: push\njobs: {}\n")  # in a hidden folder
    write(tmp_path / "dashboards" / "overview.json", json.dumps({"title": "Overview", "panels": []}))
    write(tmp_path / "ansible" / "playbook.yml", "- hosts: all\n  tasks: []\n")  # a list
    write(tmp_path / "charts" / "app" / "Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n")
    write(tmp_path / "charts" / "app" / "values.yaml", "extra: false\n")
    write(tmp_path / "charts" / "app" / "templates" / "deployment.yaml", CHART_TEMPLATE)
    return tmp_path


# -- item 3: what a directory walk reads --------------------------------------------------------------------

SKIPPED = {"values.yaml", "mkdocs.yml", "dashboards/overview.json", "ansible/playbook.yml", "charts/app"}


def test_a_repository_with_non_manifests_audits_its_manifests(repo: Path) -> None:
    result = run("audit", "-f", ".", cwd=repo)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "1 audited, 1 compliant" in result.stdout
    assert "files:     7 skipped, not Kubernetes manifests" in result.stdout  # the chart's 3 files count
    notices = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("notice:")]
    assert {n.removeprefix("notice: ").split(":")[0].removeprefix("./") for n in notices} == SKIPPED
    assert any("charts/app: 3 file(s) skipped, a Helm chart" in n and "helm template" in n for n in notices)
    assert ".pre-commit-config" not in result.stdout and "workflows" not in result.stdout  # hidden
    assert result.stderr == ""


def test_skipped_files_are_counted_in_every_format(repo: Path) -> None:
    data = json.loads(run("audit", "-f", ".", "-o", "json", cwd=repo).stdout)
    assert data["summary"]["skippedFiles"] == 7
    assert {s["file"].removeprefix("./") for s in data["skippedFiles"]} == SKIPPED
    chart = next(s for s in data["skippedFiles"] if s["file"].endswith("charts/app"))
    assert chart["files"] == 3

    sarif = json.loads(run("audit", "-f", ".", "-o", "sarif", cwd=repo).stdout)
    invocation = sarif["runs"][0]["invocations"][0]
    assert invocation["properties"]["skippedFiles"] == 7 and invocation["executionSuccessful"]
    notes = [n for n in invocation["toolExecutionNotifications"] if n["level"] == "note"]
    assert len(notes) == len(SKIPPED)

    junit = run("audit", "-f", ".", "-o", "junit", cwd=repo)
    assert junit.returncode == 0
    suite = ET.fromstring(junit.stdout).find("testsuite[@name='input']")
    assert suite is not None and suite.get("skipped") == str(len(SKIPPED)) and suite.get("errors") == "0"
    # the notices reach the CI log too, since stdout is a report file
    assert junit.stderr.count("skipped, ") == len(SKIPPED)


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("half.yaml", "apiVersion: apps/v1\nmetadata: {name: web}\n", "half.yaml:1: document has no kind"),
    ("templated.yaml", CHART_TEMPLATE, "templated.yaml:"),  # a template outside a chart: looks like one
    ("mixed.yaml", "replicaCount: 2\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
     "mixed.yaml:1: document has no kind"),
    ("broken.json", '{"apiVersion": "v1", "kind": "Service",', "broken.json:1: invalid JSON"),
])
def test_a_broken_manifest_in_a_walk_is_still_an_error(repo: Path, name: str, text: str,
                                                       fragment: str) -> None:
    write(repo / "k8s" / name, text)
    result = run("audit", "-f", ".", cwd=repo)
    assert result.returncode == 2, result.stdout
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_files_named_with_f_are_never_skipped(repo: Path) -> None:
    one_line_error(run("audit", "-f", "values.yaml", cwd=repo), "values.yaml:1: document has no kind")
    hidden = write(repo / ".hidden.yaml", "apiVersion: v1\nmetadata: {name: x}\n")
    one_line_error(run("audit", "-f", str(hidden), cwd=repo), "document has no kind")
    excluded = run("audit", "-f", "values.yaml", "--exclude", "values.yaml", cwd=repo)
    assert excluded.returncode == 2, excluded  # --exclude is for walks only


def test_a_directory_of_only_non_manifests_says_why(repo: Path) -> None:
    one_line_error(run("audit", "-f", "charts/app", cwd=repo), "no Kubernetes objects in charts/app",
                   "Helm chart")
    one_line_error(run("audit", "-f", "dashboards", cwd=repo), "no Kubernetes objects",
                   "overview.json: skipped, not a Kubernetes object")


def test_hidden_files_follow_hidden_folders(repo: Path) -> None:
    write(repo / "k8s" / ".broken.yaml", "apiVersion: v1\n")  # would be an error if read
    write(repo / "k8s" / ".old" / "broken.yaml", "apiVersion: v1\n")
    assert run("audit", "-f", "k8s", cwd=repo).returncode == 0
    shutil.copytree(repo / "k8s", repo / ".deploy", ignore=shutil.ignore_patterns(".*"))
    given = run("audit", "-f", ".deploy", cwd=repo)  # the directory given may itself be hidden
    assert given.returncode == 0 and "1 audited" in given.stdout


# -- --exclude and .readinessignore -----------------------------------------------------------------------

def test_exclude_patterns_are_gitignore_patterns(repo: Path) -> None:
    broken = "apiVersion: v1\nmetadata: {name: x}\n"
    write(repo / "k8s" / "generated" / "a.yaml", broken)
    write(repo / "k8s" / "legacy.yaml", broken)
    write(repo / "k8s" / "overlays" / "prod" / "legacy.yaml", broken)
    assert run("audit", "-f", ".", cwd=repo).returncode == 2
    excluded = run("audit", "-f", ".", "--exclude", "generated/", "--exclude", "legacy.yaml", cwd=repo)
    assert excluded.returncode == 0, excluded.stderr  # a name without a slash matches at any depth
    anchored = run("audit", "-f", ".", "--exclude", "generated/", "--exclude", "/k8s/legacy.yaml", cwd=repo)
    assert anchored.returncode == 2 and "overlays/prod/legacy.yaml" in anchored.stderr
    assert "k8s/legacy.yaml" not in anchored.stderr.replace("overlays/prod/legacy.yaml", "")
    # relative to the directory given: k8s/ is the root of this walk
    relative = run("audit", "-f", "k8s", "--exclude", "/legacy.yaml", "--exclude", "generated",
                   "--exclude", "overlays/**/legacy.yaml", cwd=repo)
    assert relative.returncode == 0, relative.stderr


def test_ignore_files_apply_to_their_folder_and_below(repo: Path) -> None:
    broken = "apiVersion: v1\nmetadata: {name: x}\n"
    write(repo / "k8s" / "generated" / "a.yaml", broken)
    write(repo / "k8s" / "generated" / "keep.yaml", broken)
    write(repo / "k8s" / "other" / "a.yaml", broken)
    write(repo / ".readinessignore", "# generated by the build\nk8s/generated/\n**/other/a.yaml\n")
    result = run("audit", "-f", ".", cwd=repo)
    assert result.returncode == 0, result.stderr
    # a deeper ignore file overrides a shallower one, and --exclude overrides both
    write(repo / ".readinessignore", "*.yaml\n!k8s/web.yaml\n")
    write(repo / "k8s" / "other" / ".readinessignore", "!a.yaml\n")
    deeper = run("audit", "-f", ".", cwd=repo)
    assert deeper.returncode == 2 and "other/a.yaml" in deeper.stderr and "generated" not in deeper.stderr
    assert run("audit", "-f", ".", "--exclude", "other/", cwd=repo).returncode == 0
    nothing = run("audit", "-f", ".", "--exclude", "*.yaml", "--exclude", "*.yml", "--exclude", "*.json",
                  cwd=repo)
    one_line_error(nothing, "directory has no *.yaml, *.yml or *.json files left", "excluded")


def test_invalid_patterns_are_one_line_errors(repo: Path) -> None:
    one_line_error(run("audit", "-f", ".", "--exclude", "!", cwd=repo), "--exclude '!'")
    write(repo / "k8s" / ".readinessignore", "ok.yaml\n!\n")
    bad = run("audit", "-f", ".", cwd=repo)
    assert bad.returncode == 2 and "k8s/.readinessignore:2: invalid pattern" in bad.stderr


# -- item 4: --output-file, --only-failing, --color -------------------------------------------------------

def test_output_file_is_written_whole_and_keeps_the_exit_status(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "readiness.sarif"
    report.parent.mkdir()
    to_stdout = run("audit", "-f", str(VIOLATING), "-o", "sarif")
    to_file = run("audit", "-f", str(VIOLATING), "-o", "sarif", "--output-file", str(report))
    assert to_file.returncode == to_stdout.returncode == 1
    assert to_file.stdout == ""
    assert json.loads(report.read_text()) == json.loads(to_stdout.stdout)
    assert [p.name for p in report.parent.iterdir()] == ["readiness.sarif"]  # no temporary file left
    report.chmod(0o640)
    clean = run("audit", "-f", str(COMPLIANT), "--output-file", str(report))
    assert clean.returncode == 0 and clean.stdout == ""
    assert "7 compliant" in report.read_text() and ANSI not in report.read_text()
    assert report.stat().st_mode & 0o777 == 0o640  # replacing a report keeps its mode


def test_output_file_that_cannot_be_written_fails_before_the_audit(tmp_path: Path) -> None:
    one_line_error(run("audit", "-f", str(COMPLIANT), "--output-file", str(tmp_path / "no" / "r.json")),
                   "--output-file", "no such directory")
    one_line_error(run("audit", "-f", str(COMPLIANT), "--output-file", str(tmp_path)), "is a directory")


def test_only_failing_lists_violating_workloads_and_counts_all() -> None:
    every = run("audit", "-f", str(ROOT / "examples" / "workloads"), "-o", "json")
    failing = run("audit", "-f", str(ROOT / "examples" / "workloads"), "-o", "json", "--only-failing")
    assert failing.returncode == every.returncode == 1
    all_data, data = json.loads(every.stdout), json.loads(failing.stdout)
    assert data["summary"] == all_data["summary"] and data["onlyFailing"] and not all_data["onlyFailing"]
    assert data["workloads"] == [w for w in all_data["workloads"] if not w["compliant"]]
    assert len(data["workloads"]) == data["summary"]["violating"] < data["summary"]["workloads"]

    text = run("audit", "-f", str(ROOT / "examples" / "workloads"), "--only-failing").stdout
    assert "✓" not in text and "7 compliant" in text
    junit = ET.fromstring(run("audit", "-f", str(ROOT / "examples" / "workloads"), "-o", "junit",
                              "--only-failing").stdout)
    classes = {case.get("classname") for case in junit.iter("testcase")}
    compliant = {f"{w['kind']}/{w['namespace']}/{w['name']}" for w in all_data["workloads"] if w["compliant"]}
    assert classes and not classes & compliant
    clean = run("audit", "-f", str(COMPLIANT), "-o", "sarif", "--only-failing")
    assert clean.returncode == 0 and json.loads(clean.stdout)["runs"][0]["results"] == []


@pytest.mark.parametrize(("flags", "env", "coloured"), [
    ([], {}, False),  # a pipe, not a terminal
    (["--color=always"], {}, True),
    (["--color", "always"], {"NO_COLOR": "1"}, True),  # the flag wins over the environment
    ([], {"FORCE_COLOR": "1"}, True),
    ([], {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
    (["--color=always", "--no-color"], {}, False),  # --no-color is --color=never; the last one wins
    (["--no-color", "--color=always"], {}, True),
    (["--color=never"], {"FORCE_COLOR": "1"}, False),
])
def test_color(flags: list[str], env: dict[str, str], coloured: bool) -> None:
    result = run("audit", "-f", str(VIOLATING), *flags, env=env)
    assert result.returncode == 1
    assert (ANSI in result.stdout) is coloured


def test_color_rejects_other_words() -> None:
    one_line_error(run("audit", "-f", str(COMPLIANT), "--color=yes"), "--color", "'yes'")


# -- --version, completion, the kubectl plugin, krew --------------------------------------------------------

def test_version_is_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run("--version")
    assert result.returncode == 0
    assert re.fullmatch(rf"readiness {re.escape(version)} \(python 3\.\d+\.\d+, \w+ \w+\)\n", result.stdout)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_parse_in_their_shell(shell: str, tmp_path: Path) -> None:
    result = run("completion", shell)
    assert result.returncode == 0 and result.stderr == ""
    for word in ("audit", "explain", "output-file", "only-failing", "sarif"):  # fish: `-l only-failing`
        assert word in result.stdout
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed: the script's syntax is not checked")
    script = write(tmp_path / f"readiness.{shell}", result.stdout)
    checked = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def bash_complete(script: Path, line: str) -> list[str]:
    """What bash offers at the end of `line`, through the script's completion function."""
    probe = f"""
source {script}
COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
spec=$(complete -p readiness); function=${{spec#*-F }}; function=${{function%% *}}
"$function" readiness "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return [word.strip() for word in done.stdout.splitlines() if word.strip()]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_flags_and_choices(tmp_path: Path) -> None:
    script = write(tmp_path / "readiness.bash", run("completion", "bash").stdout)
    assert {"audit", "checks", "explain", "completion"} <= set(bash_complete(script, "readiness "))
    assert "--only-failing" in bash_complete(script, "readiness audit --only")
    assert set(bash_complete(script, "readiness audit -o ")) == {"text", "json", "sarif", "junit"}
    assert set(bash_complete(script, "readiness audit --color ")) == {"auto", "always", "never"}
    assert set(bash_complete(script, "readiness completion ")) == {"bash", "zsh", "fish"}


def test_kubectl_plugin_names_itself_kubectl_readiness() -> None:
    plugin = BIN / "kubectl-readiness"
    assert plugin.is_file(), "the kubectl-readiness console script (pyproject.toml) is not installed"
    usage = run("--help", command=[str(plugin)])
    assert usage.returncode == 0 and usage.stdout.startswith("usage: kubectl readiness ")
    audit = run("audit", "--help", command=[str(plugin)])
    assert audit.stdout.startswith("usage: kubectl readiness audit ")
    wrong = run("audit", "--bogus", command=[str(plugin)])
    one_line_error(wrong, "kubectl readiness: error:", "(see kubectl readiness --help)")
    assert run("--version", command=[str(plugin)]).stdout.startswith("kubectl readiness ")
    assert run("--help", command=[str(BIN / "readiness")]).stdout.startswith("usage: readiness ")


KREW_TEMPLATE = ROOT / "hack" / "krew" / "readiness.yaml"
ADD_URI_AND_SHA = re.compile(r'\{\{\s*addURIAndSha\s+"([^"]+)"\s+\.TagName\s*\}\}')


def render_krew(tag: str) -> dict[str, Any]:
    """The template as krew-release-bot renders it for a release tag (the archive's hash made up)."""
    text = KREW_TEMPLATE.read_text().replace("{{ .TagName }}", tag)

    def uri_and_sha(match: re.Match[str]) -> str:
        indent = " " * (len(text[:match.start()]) - len(text[:match.start()].rstrip(" ")))
        return f"uri: {match.group(1)}\n{indent}sha256: {'ab' * 32}"

    rendered = ADD_URI_AND_SHA.sub(uri_and_sha, text)
    assert "{{" not in rendered
    document: dict[str, Any] = yaml.safe_load(rendered)
    return document


def test_krew_manifest_is_a_krew_plugin() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    plugin = render_krew(f"v{version}")
    assert plugin["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert plugin["kind"] == "Plugin"
    name = plugin["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) and f"kubectl-{name}" in scripts
    spec = plugin["spec"]
    assert set(spec) <= {"version", "homepage", "shortDescription", "description", "caveats", "platforms"}
    assert re.fullmatch(r"v\d+\.\d+\.\d+(-[\w.]+)?", spec["version"])
    assert spec["homepage"].startswith("https://") and spec["description"].strip()
    assert 0 < len(spec["shortDescription"]) <= 50 and "\n" not in spec["shortDescription"]
    platforms = {(p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"]): p
                 for p in spec["platforms"]}
    wanted = {(system, arch) for system in ("linux", "darwin") for arch in ("amd64", "arm64")}
    assert wanted <= set(platforms)
    for (os_name, arch), platform in platforms.items():
        assert set(platform) <= {"selector", "uri", "sha256", "bin", "files"}
        assert platform["bin"] == f"kubectl-{name}"
        assert platform["uri"].startswith("https://") and f"v{version}" in platform["uri"]
        assert platform["uri"].endswith(f"_{os_name}_{arch}.tar.gz")
        assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
