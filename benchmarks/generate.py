"""Generate N varied, realistic Deployments as one multi-document YAML stream on stdout.

    python benchmarks/generate.py 10000 > /tmp/deployments-10k.yaml

Deterministic (seeded), so figures are comparable between runs. The mix mirrors what `helm template`
produces for a real cluster: 1-3 containers (1.3 on average), some native sidecars (init containers with
restartPolicy: Always), about half of the workloads compliant and half violating one or more checks,
and a few documents written the YAML 1.1 way (`defaultMode: 0644`, `automountServiceAccountToken: yes`)
so that the loader's slow-but-exact path is exercised in the same proportion as in real charts (~2%).
Documents average 0.93 KB (flow-style probes and resources, optional strategy, volumes, grace period and
pod securityContext), so 10,000 of them are 9.4 MB: the size the issue quotes for its target.
"""

from __future__ import annotations

import random
import sys

TEAMS = ("payments", "search", "checkout", "identity", "catalog", "ledger", "media", "notify")
IMAGES = ("nginx:1.27.3", "ghcr.io/acme/api:2.14.1", "registry.acme.io/worker:7.3.0",
          "ghcr.io/acme/frontend:5.1.9", "quay.io/acme/gateway:1.8.2")
SIDECARS = ("envoyproxy/envoy:v1.31.2", "fluent/fluent-bit:3.1.9", "otel/opentelemetry-collector:0.110.0")


def probe(rng: random.Random, path: str) -> str:
    return f"{{httpGet: {{path: {path}, port: http}}, periodSeconds: {rng.choice((5, 10, 15))}}}"


def container(rng: random.Random, name: str, image: str, compliant: bool, indent: str) -> str:
    lines = [f"- name: {name}", f"  image: {image}",
             f"  ports: [{{name: http, containerPort: {rng.choice((8080, 8443, 9000))}}}]"]
    if compliant or rng.random() < 0.5:
        lines += [f"  readinessProbe: {probe(rng, '/ready')}"]
    if compliant or rng.random() < 0.4:
        lines += [f"  livenessProbe: {probe(rng, '/healthz')}"]
    if compliant or rng.random() < 0.6:
        cpu = rng.choice(("50m", "100m", "250m", "1"))
        mem = rng.choice(("64Mi", "128Mi", "512Mi", "1Gi"))
        lines += [f"  resources: {{requests: {{cpu: {cpu}, memory: {mem}}}, limits: {{memory: {mem}}}}}"]
    if compliant or rng.random() < 0.5:
        lines += ["  securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}"]
    return "\n".join(indent + line for line in lines)


def deployment(rng: random.Random, index: int) -> str:
    team = rng.choice(TEAMS)
    name = f"{team}-svc-{index}"
    compliant = rng.random() < 0.5
    app = container(rng, "app", rng.choice(IMAGES), compliant, "      ")
    extra = ""
    if rng.random() < 0.15:
        extra = "\n" + container(rng, "worker", rng.choice(IMAGES), compliant, "      ")
    init = ""
    if rng.random() < 0.15:
        sidecar = container(rng, "proxy", rng.choice(SIDECARS), compliant, "      ")
        init = "      initContainers:\n" + sidecar + "\n        restartPolicy: Always\n"
    yaml11 = rng.random() < 0.02  # written the YAML 1.1 way: octal mode, yes/no booleans
    mode = "0644" if yaml11 else "420"
    read_only = "yes" if yaml11 else "true"
    grace = rng.choice((30, 45, 60)) if compliant else rng.choice((0, 5, 30, 3600))
    automount = ""
    if yaml11 or rng.random() < 0.4:
        automount = f"      automountServiceAccountToken: {read_only if yaml11 else 'false'}\n"
    pod_security = ("      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n"
                    if compliant or rng.random() < 0.5 else "")
    grace_line = f"      terminationGracePeriodSeconds: {grace}\n" if compliant or rng.random() < 0.5 else ""
    # Most charts leave the strategy to the controller's defaults and mount no config volume; the
    # YAML 1.1 documents always carry their octal `defaultMode`.
    strategy = ""
    if rng.random() < 0.3:
        strategy = "  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}}\n"
    volumes = ""
    if yaml11 or rng.random() < 0.3:
        volumes = ("      volumes:\n      - name: config\n"
                   f"        configMap: {{name: {name}-config, defaultMode: {mode}}}\n")
    return f"""---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {team}
  labels: {{app: {name}}}
spec:
  replicas: {rng.choice((1, 2, 3, 5)) if not compliant else rng.choice((2, 3, 5))}
  selector:
    matchLabels: {{app: {name}}}
{strategy}  template:
    metadata:
      labels: {{app: {name}}}
    spec:
{grace_line}{pod_security}{init}      containers:
{app}{extra}
{volumes}{automount}"""


def main(argv: list[str]) -> int:
    count = int(argv[1]) if len(argv) > 1 else 1000
    rng = random.Random(20240601)
    out = sys.stdout
    for index in range(count):
        out.write(deployment(rng, index))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
