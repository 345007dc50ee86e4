"""Help that reads as flags, one --custom-kind syntax, JSON logs, no access lines at INFO (issue 13, item 12).

The access-log tests serve real HTTP in-process: Kopf's liveness endpoint (aiohttp, as the operator runs
it) and our admission webhook server, as tests/unit/test_hostile_webhook.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
from kopf._cogs.structs import ephemera
from kopf._core.engines import indexing, probing

from readiness import logs
from readiness.cli import UsageError, _kinds, build_parser
from readiness.controller import __main__ as controller_main
from readiness.controller import settings as settings_mod
from readiness.controller.handlers import watched_kinds
from readiness.envtest.controlplane import free_port
from readiness.tls import Authority, write_serving_certificate
from readiness.webhook import WebhookSettings, configure
from readiness.workload import KindRegistry, parse_custom_kind

PYTHON_WORDS = re.compile(r"\b(None|True|False)\b|set False|set True")
NO_DEFAULT = (None, False, [], (), "", argparse.SUPPRESS)


def actions(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from actions(sub, f"{path} {name}")
        elif action.help not in (None, argparse.SUPPRESS):
            yield path, action


OPERATOR = list(actions(controller_main.parser(), "readiness.controller"))
CLI = list(actions(build_parser(), "readiness"))


def label(where: str, action: argparse.Action) -> str:
    return f"{where} {'/'.join(action.option_strings) or action.dest}"


def test_every_no_flag_says_what_it_turns_off() -> None:
    negations = [(where, a) for where, a in OPERATOR + CLI
                 if any(o.startswith("--no-") for o in a.option_strings)]
    assert len(negations) >= 5
    for where, action in negations:
        text = str(action.help)
        if action.const == "never":  # --no-color: an alias
            assert text.startswith("the same as --color=never")
            continue
        assert text.startswith("Do not "), label(where, action)
        first = text.split(". ")[0].lower()
        assert " not " not in first.removeprefix("do not "), label(where, action)  # no double negation


def test_no_python_words_in_any_help() -> None:
    for where, action in OPERATOR + CLI:
        assert not PYTHON_WORDS.search(str(action.help)), (label(where, action), action.help)
    assert "``" not in controller_main.parser().format_help()


def test_every_operator_flag_shows_its_default() -> None:
    for where, action in OPERATOR:
        if action.option_strings == ["-h", "--help"]:
            continue
        assert "(default" in str(action.help).lower(), label(where, action)
    help_text = " ".join(str(action.help) for _, action in OPERATOR)
    assert "(default: 8080)" in help_text and "(default: 0.5)" in help_text
    assert "(default: Deployment,StatefulSet,DaemonSet,ReplicationController)" in help_text
    assert "--retry-max-delay" in help_text and "`retry_max_delay`" not in help_text  # fields read as flags


def test_every_cli_option_with_a_default_shows_it() -> None:
    for where, action in CLI:
        if action.default not in NO_DEFAULT and action.option_strings:
            assert "default" in str(action.help).lower(), label(where, action)


def test_operator_flags_still_set_their_settings() -> None:
    args = controller_main.parser().parse_args(
        ["--no-annotations", "--metrics-port", "0", "--event-rate", "2.5", "--kinds", "Deployment,Job",
         "--rule-labels", "release=kps", "--custom-kind", "x.io/W=spec.template", "--log-format", "json"])
    ours = settings_mod.from_args(args, environ={})
    assert (ours.annotations, ours.labels, ours.metrics_port, ours.event_rate) == (False, True, 0, 2.5)
    assert ours.kinds == ("Deployment", "Job") and ours.rule_labels == {"release": "kps"}
    assert ours.custom_kinds == ("x.io/W=spec.template",) and ours.log_format == "json"
    from_env = settings_mod.from_args(controller_main.parser().parse_args([]), environ={
        "READINESS_CUSTOM_KINDS": "a.io/A=spec.template,replicas=spec.replicas;b.io/B=spec.t"})
    assert from_env.custom_kinds == ("a.io/A=spec.template,replicas=spec.replicas", "b.io/B=spec.t")


# -- one --custom-kind syntax ------------------------------------------------------------------------------

ACCEPTED = ["example.com/Worker=spec.template", "Worker=spec.pod",
            "argoproj.io/Rollout=spec.template,replicas=spec.replicas,strategy=spec.strategy",
            "x.io/Job2=spec.jobTemplate.spec.template,class=batch,plural=jobtwos",
            "x.io/W:ws=spec.template"]
REJECTED = ["nonsense", "=spec.template", "x.io/W=", "x.io/W=.", "x.io/W=spec.t,colour=red",
            "x.io/W=spec.t,class=cluster", "x.io/W=spec.t,spec.replicas", "x.io/W:ws=spec.t,plural=ws"]


def operator_accepts(text: str) -> bool:
    try:
        settings = settings_mod.OperatorSettings(custom_kinds=(text,))
        settings_mod.validate(settings)
        watched_kinds(settings, KindRegistry())
    except ValueError:
        return False
    return True


def cli_accepts(text: str) -> bool:
    try:
        _kinds([text])
    except UsageError:
        return False
    return True


@pytest.mark.parametrize("text", ACCEPTED + REJECTED)
def test_both_shells_accept_the_same_custom_kinds(text: str) -> None:
    assert operator_accepts(text) == cli_accepts(text) == (text in ACCEPTED)


def test_the_old_plural_syntax_is_the_new_one_with_a_deprecation_line(capsys: pytest.CaptureFixture[str],
                                                                       ) -> None:
    old = parse_custom_kind("x.io/W:ws=spec.template")
    new = parse_custom_kind("x.io/W=spec.template,plural=ws")
    assert (old.spec, old.plural) == (new.spec, new.plural) and new.deprecation is None
    assert old.deprecation and "x.io/W=spec.template,plural=ws" in old.deprecation
    settings = settings_mod.OperatorSettings(kinds=(), custom_kinds=("x.io/W:ws=spec.template",))
    watched = watched_kinds(settings, KindRegistry())
    assert [(w.group, w.plural) for w in watched] == [("x.io", "ws")]
    assert settings_mod.deprecations(settings_mod.OperatorSettings(custom_kinds=("x.io/W:ws=spec.t",)))
    _kinds(["x.io/W:ws=spec.template"])
    assert "deprecated" in capsys.readouterr().err


# -- logs --------------------------------------------------------------------------------------------------

@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)
    logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.NOTSET)
    logging.getLogger("kopf.objects").setLevel(logging.NOTSET)


def test_json_logs_are_one_object_per_line_with_kopf_object_context(log_stream: io.StringIO) -> None:
    logs.configure("json", stream=log_stream)
    logging.getLogger("readiness.test").info("plain %s", "line\nwith a newline")
    body = kopf.Body({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}})
    kopf_logger = kopf.ObjectLogger(body=body, settings=kopf.OperatorSettings())  # as Kopf's handlers log
    kopf_logger.warning("handler failed")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("readiness.test").exception("with a traceback")
    lines = log_stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 3
    assert {"time", "level", "logger", "message"} <= set(entries[0]) and "object" not in entries[0]
    assert entries[0]["message"] == "plain line\nwith a newline" and entries[0]["level"] == "INFO"
    assert entries[1]["object"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop",
                                    "name": "web", "uid": "u-1"}
    assert entries[1]["level"] == "WARNING" and entries[1]["logger"] == "kopf.objects"
    assert "RuntimeError: boom" in entries[2]["exception"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entries[0]["time"])


def test_text_logs_name_the_object(log_stream: io.StringIO) -> None:
    logs.configure("text", stream=log_stream)
    body = kopf.Body({"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}})
    kopf.ObjectLogger(body=body, settings=kopf.OperatorSettings()).warning("handler %s", "failed")
    assert log_stream.getvalue().rstrip().endswith("WARNING kopf.objects: [shop/web] handler failed")


async def _probe_liveness(port: int) -> None:
    ready = asyncio.Event()
    task = asyncio.create_task(probing.health_reporter(
        f"http://127.0.0.1:{port}/healthz", memo=ephemera.AnyMemo(ephemera.Memo()),
        indices=indexing.OperatorIndexers().indices, registry=kopf.OperatorRegistry(),
        settings=kopf.OperatorSettings(), ready_flag=ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        url = f"http://127.0.0.1:{port}/healthz"
        async with aiohttp.ClientSession() as session, session.get(url) as reply:
            assert reply.status == 200
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _post_admission(tmp_path: Path) -> None:
    import ssl

    paths = write_serving_certificate(tmp_path, ["127.0.0.1"], Authority.create())
    port = free_port()
    settings = WebhookSettings(addr="127.0.0.1", host="127.0.0.1", port=port, certfile=paths.certfile,
                               pkeyfile=paths.pkeyfile, cafile=paths.cafile, operator_namespace="ops")
    kopf_settings = kopf.OperatorSettings()

    class NoPolicies:
        def engines(self) -> list[Any]:
            return []

        def namespace_labels(self, name: str) -> None:
            return None

    configure(kopf_settings, types.SimpleNamespace(extra={"webhook": settings}), NoPolicies(),
              registry=kopf.OperatorRegistry())

    async def answer(*_: Any, **__: Any) -> dict[str, Any]:
        return {"response": {"allowed": True}}

    assert isinstance(kopf_settings.admission.server, kopf.WebhookServer)
    async with kopf_settings.admission.server as server:
        configs = server(answer)
        await configs.__anext__()
        try:
            connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(paths.cafile)))
            async with aiohttp.ClientSession(connector=connector) as session, session.post(
                    f"https://127.0.0.1:{port}/readiness", json={"request": {"uid": "1"}}) as reply:
                assert reply.status == 200
        finally:
            await configs.aclose()  # type: ignore[attr-defined]


def serve_both(tmp_path: Path) -> None:
    async def both() -> None:
        await _probe_liveness(free_port())
        await _post_admission(tmp_path)

    asyncio.run(both())


def test_no_access_lines_at_info(log_stream: io.StringIO, tmp_path: Path) -> None:
    logs.configure("text", stream=log_stream)
    serve_both(tmp_path)
    assert "aiohttp.access" not in log_stream.getvalue()
    assert "Admission webhook on 127.0.0.1" in log_stream.getvalue()  # the server did log at INFO


def test_access_lines_are_debug_with_verbose(log_stream: io.StringIO, tmp_path: Path) -> None:
    logs.configure("json", verbose=True, stream=log_stream)
    serve_both(tmp_path)
    entries = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    access = [entry for entry in entries if entry["logger"] == "aiohttp.access"]
    assert {"GET /healthz", "POST /readiness"} <= {m for e in access for m in re.findall(
        r"(GET /healthz|POST /readiness)", e["message"])}
    assert {entry["level"] for entry in access} == {"DEBUG"}
