"""image-digest-missing: off by default; for supply-chain policies that pin every image."""

from __future__ import annotations

from readiness.checks._helpers import has_digest
from readiness.checks.base import ALL_ROLES, Category, Fail, NoParams, Severity, container_check, fail
from readiness.workload import Container, Workload


@container_check(
    id="image-digest-missing",
    category=Category.IMAGES,
    severity=Severity.INFO,
    title="Image is not pinned by digest",
    message="container {container} image {image} is not pinned by digest",
    rationale="""
Even a version tag can be overwritten in the registry: only a digest (`@sha256:...`) names exactly one
image. Pinning by digest makes deployments reproducible and is what image signature and provenance
policies verify.

Off by default: it needs tooling (Renovate, Flux or Argo CD image automation, a CI step) to keep digests
up to date, and `image-tag-mutable` already catches the common mistake. Every container role is judged.
""",
    remediation="""
Reference the image by digest; keeping the tag alongside documents the version:

```yaml
image: registry.example.com/shop/web:1.4.2@sha256:4b8ce6e6c5b7e0a1...
```
""",
    enabled_by_default=False,
    roles=ALL_ROLES,
    references=("checkov:CKV_K8S_43",),
)
def image_digest_missing(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    image = container.spec.get("image")
    if not isinstance(image, str) or has_digest(image):
        return None
    return fail(image=image)
