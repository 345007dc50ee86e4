"""The loader: both parsers give the objects Kubernetes sees, documents keep their lines, bad input is
reported with file and line."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from readiness import loader
from readiness.loader import load_paths, load_text, normalise, parse_kubernetes_yaml, split_documents

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted([*ROOT.glob("operator/readiness/checks/*/*.yaml"), *ROOT.glob("examples/**/*.yaml")])


def objects(text: str) -> list[Any]:
    result = load_text(text, "t.yaml")
    assert not result.errors, result.errors
    return [d.obj for d in result.documents]


def exact_objects(text: str) -> list[Any]:
    """Every document through the PyYAML (go-yaml v2 semantics) path."""
    text = normalise(text)
    parsed = (parse_kubernetes_yaml(text[s.start:s.end]) for s in split_documents(text))
    return [obj for obj in parsed if obj is not None]


def rs_objects(text: str) -> list[Any]:
    """Every document through yaml-rs, with no quirk detection: what the fast path would give."""
    text = normalise(text)
    parsed = (loader._rs_loads(text[s.start:s.end], parse_datetime=False) for s in split_documents(text))
    return [obj for obj in parsed if obj is not None]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_both_paths_agree_on_every_fixture(path: Path) -> None:
    text = path.read_text()
    assert objects(text) == exact_objects(text)


QUIRKS = {
    "octal mode": ("mode: 0644\n", {"mode": 420}),
    "octal in flow": ("v: {defaultMode: 0755}\n", {"v": {"defaultMode": 493}}),
    "yes/on booleans": ("sc: {runAsNonRoot: yes, readOnlyRootFilesystem: on, privileged: off, x: n}\n",
                        {"sc": {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "privileged": False,
                                "x": False}}),
    "list item boolean": ("l:\n  - yes\n  - No\n", {"l": [True, False]}),
    "quoted on stays a string": ("a: 'on'\nb: \"yes\"\nc: '0644'\n", {"a": "on", "b": "yes", "c": "0644"}),
    "merge keys": ("base: &b {cpu: 1m, memory: 1Mi}\nres:\n  <<: *b\n  memory: 2Mi\n",
                   {"base": {"cpu": "1m", "memory": "1Mi"}, "res": {"cpu": "1m", "memory": "2Mi"}}),
    "anchors and aliases": ("a: &x {b: [1, 2]}\nc: *x\n", {"a": {"b": [1, 2]}, "c": {"b": [1, 2]}}),
    "block scalars": ("s: |\n  line one\n  line two\nf: >-\n  folded\n  text\n",
                      {"s": "line one\nline two\n", "f": "folded text"}),
    "timestamps stay strings": ("t: 2024-05-01T10:00:00Z\nd: 2024-05-01\n",
                                {"t": "2024-05-01T10:00:00Z", "d": "2024-05-01"}),
    "go-yaml numbers": ("a: 0o17\nb: 0x1F\nc: 0b101\nd: 1_000\ne: 1e3\nf: '1:20'\ng: 1:20\n",
                        {"a": 15, "b": 31, "c": 5, "d": 1000, "e": 1000.0, "f": "1:20", "g": "1:20"}),
    "equals sign is a string": ("a: =\n", {"a": "="}),
    "explicit int tag": ("a: !!int '0644'\n", {"a": 420}),
}


@pytest.mark.parametrize("name", list(QUIRKS))
def test_quirks_read_as_kubernetes_reads_them(name: str) -> None:
    text, expected = QUIRKS[name]
    assert objects(text) == [expected]
    assert exact_objects(text) == [expected]


def test_quirk_detection_sends_yaml11_documents_to_the_exact_path() -> None:
    assert loader.needs_exact_parser("mode: 0644\n")
    assert loader.needs_exact_parser("x: [on, off]\n")
    assert loader.needs_exact_parser("<<: *a\n")
    assert not loader.needs_exact_parser("mode: 420\nname: 'on'\nimage: nginx:1.27\n")
    # the fast path alone would get these wrong: that is what the detection is for
    assert rs_objects("mode: 0644\n") != exact_objects("mode: 0644\n")


def test_documents_and_lines() -> None:
    text = ("%YAML 1.1\n---\n# comment\napiVersion: v1\nkind: A\n---\n---  # empty\n# only comments\n"
            "--- {kind: B}\n...\n---\nkind: C\ns: |\n  ---\n  not a separator\n")
    result = load_text(text, "t.yaml")
    assert [(d.obj["kind"], d.line) for d in result.documents] == [("A", 4), ("B", 9), ("C", 12)]
    assert result.documents[2].obj["s"] == "---\nnot a separator\n"


def test_crlf_and_bom() -> None:
    text = "\ufeffkind: A\r\nmode: 0644\r\n---\r\nkind: B\r\n"
    result = load_text(text, "t.yaml")
    assert [d.obj for d in result.documents] == [{"kind": "A", "mode": 420}, {"kind": "B"}]
    assert [d.line for d in result.documents] == [1, 4]


@pytest.mark.parametrize("text", ["kind: A\nkind: B\n", "kind: A\nspec: {x: 1, x: 2}\n",
                                  "kind: A\nmode: 0644\nmode: 0600\n"])
def test_duplicate_keys_are_errors_naming_key_and_line(text: str) -> None:
    result = load_text("---\nkind: Ok\n---\n" + text, "dup.yaml")
    assert [d.obj["kind"] for d in result.documents] == ["Ok"]
    (error,) = result.errors
    assert error.source == "dup.yaml" and "duplicate key" in error.message
    assert error.line is not None and error.line >= 4


def test_malformed_yaml_names_file_and_line_and_keeps_the_rest() -> None:
    result = load_text("kind: A\n---\nkind: B\n  bad: [indent\n---\nkind: C\n", "m.yaml")
    assert [d.obj["kind"] for d in result.documents] == ["A", "C"]
    (error,) = result.errors
    assert str(error).startswith("m.yaml:") and error.line in (3, 4)
    assert "\n" not in str(error)


def test_list_objects_are_expanded_with_item_lines() -> None:
    text = ("apiVersion: v1\nkind: List\nitems:\n- kind: Deployment\n  metadata: {name: a}\n"
            "- kind: Service\n  metadata: {name: b}\n")
    docs = load_text(text, "l.yaml").documents
    assert [(d.obj["kind"], d.line) for d in docs] == [("Deployment", 4), ("Service", 6)]


def test_json_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("kind: A\n")
    (tmp_path / "sub" / "b.json").write_text('{"kind": "B"}')
    (tmp_path / "notes.txt").write_text("ignored")
    result = load_paths([str(tmp_path)])
    assert [d.obj["kind"] for d in result.documents] == ["A", "B"]


def test_unreadable_inputs_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = load_paths([str(tmp_path / "missing.yaml"), str(tmp_path / "empty")])
    assert [e.source for e in result.errors] == [str(tmp_path / "missing.yaml"), str(tmp_path / "empty")]


def test_stdin() -> None:
    result = load_paths(["-"], io.StringIO("kind: A\n"))
    assert result.documents[0].source == "-"


def test_container_line() -> None:
    text = ("kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
            "        - name: web\n          image: x\n        - image: y\n          name: \"side\"\n")
    doc = load_text(text, "c.yaml").documents[0]
    assert loader.container_line(doc, "web") == 6
    assert loader.container_line(doc, "side") == 9
    assert loader.container_line(doc, "absent") == 1


def _container_line_by_regex(document: loader.Document, container: str) -> int:
    """The plain way container_line once worked: both searches as patterns tried at every offset."""
    import re

    anchor = re.compile(r"(?:initContainers|containers):").search(document.text)
    if anchor is None:
        return document.line
    name = re.compile(r"\bname:[ \t]*([\"']?)" + re.escape(container) + r"\1[ \t]*(?:[,}\n#]|$)")
    match = name.search(document.text, anchor.end())
    if match is None:
        return document.line
    return document.text_line + document.text.count("\n", 0, match.start())


@pytest.mark.parametrize("text", [
    "kind: Pod\nspec:\n  initContainers:\n  - name: init\n  containers:\n  - name: app\n",
    "kind: Pod\nspec:\n  containers: [{name: app}, {name: 'init'}]\n",
    "kind: Pod\nspec:\n  ephemeralContainers:\n  - name: app\n  containers:\n  - xname: app\n    name: app\n",
    "kind: Pod\nspec:\n  mycontainers:\n  - name: app # here\n",
    "kind: Pod\nspec:\n  Containers:\n  - name: app\n",
    "kind: Pod\nspec:\n  containers:\n  - name: application\n  - name:   app  \n",
    "ontainers: x\nkind: Pod\ncontainers:\n- name: init\n",
    "name: app\n",
])
def test_container_line_is_the_plain_search_made_fast(text: str) -> None:
    doc = load_text(text, "c.yaml").documents[0]
    for container in ("app", "init", "application", "absent"):
        assert loader.container_line(doc, container) == _container_line_by_regex(doc, container), container


def test_a_stream_cut_at_a_separator_keeps_its_documents_and_their_lines() -> None:
    from readiness.loader import separator_after

    text = "a: 1\n---\nb: |\n  ---\n  text\n---\nc: 3\n...\nd: 4\n"
    whole = [(d.line, d.obj) for d in load_text(text, "s").documents]
    assert separator_after(text, len("a: 1\n---\nb")) == text.index("---\nc")  # not the indented one
    assert separator_after(text, len(text) - 2) is None
    for offset in range(len(text)):
        cut = separator_after(text, offset)
        if cut is None:
            continue
        first = load_text(text[:cut], "s").documents
        line = text.count("\n", 0, cut) + 1
        second = load_text(text[cut:], "s", first_line=line).documents
        assert [(d.line, d.obj) for d in [*first, *second]] == whole
