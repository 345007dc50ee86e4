"""secret-in-env: credentials belong in Secrets, not in the manifest."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any

from annotated_types import Ge

from readiness.checks._helpers import is_mapping
from readiness.checks.base import ALL_ROLES, Category, CheckParams, Fail, Severity, container_check, fail
from readiness.workload import Container, Workload

_URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S*\Z")
# detect-secrets' and gitleaks' marker of key material: a PEM private key (RSA, EC, OPENSSH, PKCS#8,
# ENCRYPTED...) or a PuTTY key file.
_PRIVATE_KEY = re.compile(r"-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY( BLOCK)?-----|PuTTY-User-Key-File-\d")
_REFERENCE = re.compile(r"\$(\([A-Za-z_][A-Za-z0-9_.-]*\)|\{[A-Za-z_][A-Za-z0-9_.-]*\})\Z")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?\Z")
_PLACEHOLDER_SHAPE = re.compile(r"<[^<>]*>|x{3,}|\*{3,}|(your|replace|insert)[-_ ].*", re.IGNORECASE)
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_MAX_MEMO = 4096

PRIVATE_KEY_LABEL = " (a private key)"
URL_LABEL = " (credentials in a URL)"
PLACEHOLDER_LABEL = " (a placeholder)"


class Params(CheckParams):
    """What makes an environment variable look like a secret."""

    patterns: tuple[str, ...] = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "API_KEY", "APIKEY",
                                 "PRIVATE_KEY", "CREDENTIAL", "CREDENTIALS", "ACCESS_KEY", "AUTH_KEY")
    """Name fragments, matched case-insensitively where a name segment ends: `DB_PASSWORD` and
    `dbPassword` match PASSWORD, `PASSWORDLESS_LOGIN` and `TOKENIZER_MODEL` do not. Any literal value
    fails, unless it is obviously no secret (see the rationale)."""
    key_segments: tuple[str, ...] = ("KEY",)
    """Name segments that name a key, which is a secret only sometimes: `AZURE_BATCH_KEY`,
    `OCI_CLI_KEY_CONTENT` and `azureStorageKey`, but also `ROUTING_KEY` and `CACHE_KEY_PREFIX`. Matched as a
    whole segment (snake or camel case), so `MONKEY` does not match; the variable fails only when its
    value also looks like key material (see `keyMinLength`), is a private key or is a placeholder. Empty:
    judge such names by their value alone."""
    key_min_length: Annotated[int, Ge(1)] = 16
    """How long a value under a `keySegments` name must be, without spaces and with both letters and
    digits, to look like key material (base64 and hex keys do; `orders.created` does not)."""
    ignored_suffixes: tuple[str, ...] = ("_URL", "_URI", "_FILE", "_PATH", "_DIR", "_ENDPOINT", "_HOST",
                                         "_PORT", "_NAME", "_ID", "_TTL", "_TIMEOUT", "_EXPIRY", "_HEADER",
                                         "_LENGTH", "_ENABLED", "_TYPE", "_REF")
    """Names ending like this refer to a secret rather than hold one (`PASSWORD_FILE`, `TOKEN_URL`,
    `SECRET_NAME`, `AWS_ACCESS_KEY_ID`) and pass."""
    ignored_values: tuple[str, ...] = ("true", "false", "yes", "no", "on", "off", "y", "n", "enabled",
                                       "disabled", "none", "null", "nil")
    """Values that are switches, not secrets, matched case-insensitively: Bitnami's
    `ALLOW_EMPTY_PASSWORD: "no"` and `RABBITMQ_SECURE_PASSWORD: "yes"` pass. Numbers always pass."""
    placeholders: tuple[str, ...] = ("changeme", "change-me", "change_me", "changeit", "password",
                                     "passw0rd", "secret", "example", "sample", "todo", "tbd", "fixme",
                                     "replaceme", "dummy", "default", "admin", "test", "placeholder")
    """Values that are placeholder credentials, matched case-insensitively, as are `<your-token>`,
    `xxxx`, `****` and `your-...`/`replace-...`: a default anyone can guess. They fail under a secret or
    key name, with "(a placeholder)", and pass under any other name (`GREETING: example`)."""
    url_credentials: bool = True
    """Also fail any variable whose literal value is a URL with a password (`postgres://u:p@db/app`),
    whatever its name."""
    private_keys: bool = True
    """Also fail any variable whose literal value holds a private key (`-----BEGIN ... PRIVATE KEY-----`,
    a PuTTY key file), whatever its name. Certificates and public keys pass."""

    @cached_property
    def _name_pattern(self) -> re.Pattern[str]:
        fragments = "|".join(re.escape(p.upper()) for p in self.patterns) or r"(?!)"
        return re.compile(rf"(?:{fragments})(?:_|$)")

    @cached_property
    def _key_pattern(self) -> re.Pattern[str]:
        segments = "|".join(re.escape(s.upper()) for s in self.key_segments) or r"(?!)"
        return re.compile(rf"(?:^|_)(?:{segments})(?:_|$)")

    @cached_property
    def _suffixes(self) -> tuple[str, ...]:
        return tuple(s.upper() for s in self.ignored_suffixes)

    @cached_property
    def ignored(self) -> frozenset[str]:
        return frozenset(v.lower() for v in self.ignored_values)

    @cached_property
    def placeholder_words(self) -> frozenset[str]:
        return frozenset(v.lower() for v in self.placeholders)

    @cached_property
    def _verdicts(self) -> dict[str, str | None]:
        return {}  # env names repeat across a cluster: judge each name once

    def name_kind(self, name: str) -> str | None:
        """"secret" (any value is a leak), "key" (a leak when the value looks like one), or None."""
        if name in self._verdicts:
            return self._verdicts[name]
        normalized = _CAMEL_HUMP.sub("_", name).upper().replace("-", "_").replace(".", "_")
        squashed = name.upper().replace("-", "_").replace(".", "_")
        verdict: str | None = None
        if not normalized.endswith(self._suffixes) and not squashed.endswith(self._suffixes):
            if self._name_pattern.search(squashed):
                verdict = "secret"
            elif self._key_pattern.search(normalized):
                verdict = "key"
        if len(self._verdicts) >= _MAX_MEMO:
            self._verdicts.clear()
        self._verdicts[name] = verdict
        return verdict


def is_placeholder(value: str, params: Params) -> bool:
    return value.lower() in params.placeholder_words or bool(_PLACEHOLDER_SHAPE.fullmatch(value))


def _obviously_not_secret(value: str, params: Params) -> bool:
    """A path, a `$(VAR)` reference, a switch, a number, or a URL without credentials."""
    return (value[0] == "/" or (value[0] == "$" and bool(_REFERENCE.match(value)))
            or value.lower() in params.ignored or bool(_NUMBER.match(value))
            or ("://" in value and bool(_URL.match(value))))


def _looks_like_key(value: str, params: Params) -> bool:
    return (len(value) >= params.key_min_length and not any(c.isspace() for c in value)
            and any(c.isdigit() for c in value) and any(c.isalpha() for c in value))


def leak(var: Mapping[str, Any], params: Params) -> str | None:
    """None when this env entry leaks nothing, else the label its name gets in the message ("" or
    " (a placeholder)"...). Never the value: it is what must not be printed."""
    value = var.get("value")
    if value.__class__ is not str:
        return None  # valueFrom (secretKeyRef...), or a value the API server would reject anyway
    value = value.strip()
    if not value:
        return None
    if params.private_keys and ("PRIVATE KEY" in value or "PuTTY" in value) and _PRIVATE_KEY.search(value):
        return PRIVATE_KEY_LABEL
    if params.url_credentials and "@" in value and _URL_CREDENTIALS.search(value):
        return URL_LABEL
    name = var.get("name")
    kind = params.name_kind(name) if name.__class__ is str else None
    if kind is None or _obviously_not_secret(value, params):
        return None
    if is_placeholder(value, params):
        return PLACEHOLDER_LABEL
    if kind == "secret" or _looks_like_key(value, params):
        return ""
    return None


@container_check(
    id="secret-in-env",
    category=Category.CONFIG,
    severity=Severity.ERROR,
    title="Secret given as a literal environment value",
    message="container {container} sets {names} as literal env values; use valueFrom.secretKeyRef",
    rationale="""
A password or token written as a literal `value` lives in the manifest: in Git, in Helm release history,
in the object anyone with read access to Deployments can see, and in every backup. It cannot be rotated
without a deploy, and RBAC on Secrets no longer protects it. A placeholder (`changeme`, `password`,
`example`, `TODO`, `<your-token>`) is worse: it is a default credential anyone can guess, shipped to
production because nobody replaced it.

Both the name and the value are judged, as detect-secrets and gitleaks do:

- **Any name**: a value holding a private key (`-----BEGIN ... PRIVATE KEY-----`, a PuTTY key) or a URL
  with a password (`postgres://app:s3cret@db/app`) fails.
- **Secret names** (`patterns`, matched where a name segment ends): `DB_PASSWORD`, `dbPassword` and
  `STRIPE_API_KEY` fail, `TOKENIZER_MODEL` and `PASSWORDLESS_LOGIN` do not.
- **Key names** (`keySegments`, a whole `KEY` segment): `AZURE_BATCH_KEY`, `OCI_CLI_KEY_CONTENT` and
  `azureStorageKey` fail when the value looks like key material (long, letters and digits, no spaces) or
  is a placeholder; `ROUTING_KEY: orders.created` passes.

To keep false positives low, values that are obviously no secret pass under any name: empty values,
switches (`ALLOW_EMPTY_PASSWORD: "no"`, `RABBITMQ_SECURE_PASSWORD: "yes"`: Bitnami's charts set dozens;
see `ignoredValues`), numbers (`PASSWORD_MIN_LENGTH: "12"`), absolute paths, `$(VAR)` and `${VAR}`
references, and URLs without credentials (`TOKEN_ISSUER`). So do names that refer to a secret rather
than hold one (`PASSWORD_FILE`, `TOKEN_URL`, `SECRET_NAME`, `AWS_ACCESS_KEY_ID`: see `ignoredSuffixes`).
Values are never printed. The finding points at the first leaking env entry's line. Every container
role is judged.
""",
    remediation="""
Store the value in a Secret and reference it (and replace a placeholder by a generated value):

```yaml
env:
  - name: DB_PASSWORD
    valueFrom:
      secretKeyRef: {name: db-credentials, key: password}
```
""",
    params=Params,
    roles=ALL_ROLES,
    references=("polaris:sensitiveContainerEnvVar", "kube-linter:env-var-secret"),
)
def secret_in_env(container: Container, workload: Workload, params: Params) -> Fail | None:
    env = container.spec.get("env")
    if not env or not isinstance(env, list):
        return None
    for index, var in enumerate(env):
        if is_mapping(var) and leak(var, params) is not None:
            # only now pay for the list of names (the passing path allocates nothing)
            names = [f"{v.get('name')}{label}" for v in env[index:]
                     if is_mapping(v) and (label := leak(v, params)) is not None]
            return fail(names=", ".join(names), field=f"env[{index}]")
    return None
