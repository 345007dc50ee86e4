"""secret-in-env: credentials belong in Secrets, not in the manifest."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from readiness.checks._helpers import is_mapping
from readiness.checks.base import ALL_ROLES, Category, CheckParams, Fail, Severity, container_check, fail
from readiness.workload import Container, Workload

_URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_MAX_MEMO = 4096


class Params(CheckParams):
    """What makes an environment variable look like a secret."""

    patterns: tuple[str, ...] = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "API_KEY", "APIKEY",
                                 "PRIVATE_KEY", "CREDENTIAL", "CREDENTIALS", "ACCESS_KEY", "AUTH_KEY")
    """Name fragments, matched case-insensitively where a name segment ends: `DB_PASSWORD` and
    `dbPassword` match PASSWORD, `PASSWORDLESS_LOGIN` and `TOKENIZER_MODEL` do not."""
    ignored_suffixes: tuple[str, ...] = ("_URL", "_URI", "_FILE", "_PATH", "_DIR", "_ENDPOINT", "_HOST",
                                         "_PORT", "_NAME", "_ID", "_TTL", "_TIMEOUT", "_EXPIRY", "_HEADER",
                                         "_LENGTH", "_ENABLED", "_TYPE", "_REF")
    """Names ending like this refer to a secret rather than hold one (`PASSWORD_FILE`, `TOKEN_URL`,
    `SECRET_NAME`, `AWS_ACCESS_KEY_ID`) and pass."""
    url_credentials: bool = True
    """Also fail any variable whose literal value is a URL with a password (`postgres://u:p@db/app`),
    whatever its name."""

    @cached_property
    def _name_pattern(self) -> re.Pattern[str]:
        fragments = "|".join(re.escape(p.upper()) for p in self.patterns) or r"(?!)"
        return re.compile(rf"(?:{fragments})(?:_|$)")

    @cached_property
    def _suffixes(self) -> tuple[str, ...]:
        return tuple(s.upper() for s in self.ignored_suffixes)

    @cached_property
    def _verdicts(self) -> dict[str, bool]:
        return {}  # env names repeat across a cluster: judge each name once

    def secret_name(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            normalized = name.upper().replace("-", "_").replace(".", "_")
            verdict = bool(self._name_pattern.search(normalized)) and not normalized.endswith(self._suffixes)
            if len(self._verdicts) >= _MAX_MEMO:
                self._verdicts.clear()
            self._verdicts[name] = verdict
        return verdict


def _literal_secret(var: Mapping[str, Any], params: Params) -> bool:
    value = var.get("value")
    if not value or value.__class__ is not str:
        return False  # valueFrom (secretKeyRef...) or empty: nothing leaked
    if value[0] == "/" or (value[0] == "$" and value.startswith("$(") and value.endswith(")")):
        return False  # a path, or a reference to another variable
    name = var.get("name")
    if name.__class__ is str and params.secret_name(name):
        return True
    return params.url_credentials and "@" in value and bool(_URL_CREDENTIALS.search(value))


@container_check(
    id="secret-in-env",
    category=Category.CONFIG,
    severity=Severity.ERROR,
    title="Secret given as a literal environment value",
    message="container {container} sets {names} as literal env values; use valueFrom.secretKeyRef",
    rationale="""
A password or token written as a literal `value` lives in the manifest: in Git, in Helm release history,
in the object anyone with read access to Deployments can see, and in every backup. It cannot be rotated
without a deploy, and RBAC on Secrets no longer protects it.

Names are matched against the `patterns` where a name segment ends, so `DB_PASSWORD`, `dbPassword` and
`STRIPE_API_KEY` fail while `TOKENIZER_MODEL` and `PASSWORDLESS_LOGIN` pass. To limit false positives,
names that refer to a secret rather than hold one (`PASSWORD_FILE`, `TOKEN_URL`, `SECRET_NAME`,
`AWS_ACCESS_KEY_ID`: see `ignoredSuffixes`) pass, and so do empty values, values that are absolute paths
and `$(VAR)` references. Any literal URL with embedded credentials fails whatever its name. Values are
never printed. Every container role is judged.
""",
    remediation="""
Store the value in a Secret and reference it:

```yaml
env:
  - name: DB_PASSWORD
    valueFrom:
      secretKeyRef: {name: db-credentials, key: password}
```
""",
    params=Params,
    roles=ALL_ROLES,
    references=("polaris:sensitiveContainerEnvVar", "kube-linter:env-var-secret", "checkov:CKV_K8S_35"),
)
def secret_in_env(container: Container, workload: Workload, params: Params) -> Fail | None:
    env = container.spec.get("env")
    if not env or not isinstance(env, list):
        return None
    for var in env:
        if is_mapping(var) and _literal_secret(var, params):
            # only now pay for the list of names (the passing path allocates nothing)
            leaked = [str(v.get("name")) for v in env if is_mapping(v) and _literal_secret(v, params)]
            return fail(names=", ".join(leaked))
    return None
