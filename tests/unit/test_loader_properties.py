"""Property: the fast reading of documents with YAML 1.1 words (yaml-rs with placeholders) gives exactly
what PyYAML with go-yaml's resolvers gives, or fails where it fails, whatever context the words sit in."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from readiness import loader
from readiness.loader import YamlSyntaxError, load_text, parse_kubernetes_yaml

QUIRK_WORDS = ["yes", "no", "on", "off", "y", "n", "Y", "N", "Yes", "NO", "On", "OFF", "0644", "-0755", "+07",
               "0_7", "007", "09", "0"]
PLAIN_WORDS = ["true", "false", "12", "abc", "nginx:1.27", "1e3", "~", "null", "x-y", "0x1F", "0o17", "1_000"]
words = st.sampled_from(QUIRK_WORDS + PLAIN_WORDS)
phrases = st.lists(words, min_size=1, max_size=3).map(" ".join)
comma_phrases = st.lists(words, min_size=2, max_size=3).map(", ".join)


def _double(text: str) -> str:
    return '"' + text + '"'


def _single(text: str) -> str:
    return "'" + text + "'"


inline_values = st.one_of(
    words, phrases, comma_phrases,
    phrases.map(_double), comma_phrases.map(_double), phrases.map(_single), comma_phrases.map(_single),
    st.lists(words, min_size=1, max_size=3).map(lambda ws: "[" + ", ".join(ws) + "]"),
    st.lists(st.tuples(words, words), min_size=1, max_size=2).map(
        lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"),
    st.tuples(words, words).map(lambda ws: f"{ws[0]} # {ws[1]}"),
)


@st.composite
def entries(draw: st.DrawFn, indent: str) -> str:
    key = draw(words)
    shapes = ["inline", "list", "block", "nested", "multiline-quoted", "multiline-plain"]
    shape = draw(st.sampled_from(shapes))
    deeper = indent + "  "
    if shape == "inline":
        return f"{indent}{key}: {draw(inline_values)}\n"
    if shape == "list":
        items = draw(st.lists(inline_values, min_size=1, max_size=3))
        return f"{indent}{key}:\n" + "".join(f"{deeper}- {item}\n" for item in items)
    if shape == "block":
        style = draw(st.sampled_from(["|", "|-", ">", ">-", "|+"]))
        lines = draw(st.lists(phrases, min_size=1, max_size=2))
        return f"{indent}{key}: {style}\n" + "".join(f"{deeper}{line}\n" for line in lines)
    if shape == "multiline-quoted":
        quote = draw(st.sampled_from(['"', "'"]))
        first, second = draw(phrases), draw(words)
        return f"{indent}{key}: {quote}{first}\n{deeper}{second}{quote}\n"
    if shape == "multiline-plain":
        return f"{indent}{key}: {draw(words)}\n{deeper}{draw(words)}\n"
    if len(indent) >= 4:
        return f"{indent}{key}: {draw(words)}\n"
    return f"{indent}{key}:\n" + "".join(draw(st.lists(entries(deeper), min_size=1, max_size=3)))


documents = st.lists(entries(""), min_size=1, max_size=4).map("".join)


def exact(text: str) -> tuple[str, Any]:
    try:
        return "ok", parse_kubernetes_yaml(text)
    except (YamlSyntaxError, RecursionError):
        return "error", None


def fast(text: str) -> tuple[str, Any]:
    result = load_text(text, "p.yaml")
    if result.errors:
        return "error", None
    objects = [d.obj for d in result.documents]
    return "ok", objects[0] if objects else None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
@example("a: yes\nb: 'on'\nc: \"x, off, y\"\nd: [0644, n]\ne: echo yes\n")
@example("yes: 1\ntrue: 2\n")  # keys that collide once typed: PyYAML names the duplicate
@example("s: |-\n  yes\n")  # a block scalar whose whole text is a word stays a string
@example("m: \"a\n  yes\"\n")
def test_placeholders_read_what_pyyaml_reads(text: str) -> None:
    assert fast(text) == exact(text), text


def test_the_placeholder_path_is_taken() -> None:
    """The property above would pass vacuously if every such document went to PyYAML."""
    text = "a: yes\nb: [0644, 'on']\nc: x, off\n"
    quirks = loader.find_quirks(text)
    assert [text[s:e] for s, e in quirks.words] == ["yes", "0644", "off"]
    assert loader._parse_with_placeholders(text, quirks.words) == {"a": True, "b": [420, "on"], "c": "x, off"}
