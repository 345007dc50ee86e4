"""image-tag-mutable: `latest` or no tag means the image can change under the same manifest."""

from __future__ import annotations

from readiness.checks._helpers import has_digest, image_tag
from readiness.checks.base import ALL_ROLES, Category, Fail, NoParams, Severity, container_check, fail
from readiness.workload import Container, Workload


@container_check(
    id="image-tag-mutable",
    category=Category.IMAGES,
    severity=Severity.WARNING,
    title="Image has no tag or uses latest",
    message="container {container} image {image} {problem}",
    rationale="""
An image without a tag means `latest`, and `latest` moves. Two pods of the same ReplicaSet can run
different code, a restart can silently upgrade (or downgrade) the application, a rollback redeploys the
same broken image, and nobody can tell from the manifest what is running.

A registry port is not a tag (`registry:5000/app` has none), and an image pinned by digest
(`app@sha256:...`) passes whatever its tag says. Every container role is judged.
""",
    remediation="""
Pin a version tag that your pipeline never overwrites, or better, a digest:

```yaml
image: registry.example.com:5000/shop/web:1.4.2
# or
image: registry.example.com/shop/web@sha256:4b8ce6e6c5b7e0a1...
```
""",
    roles=ALL_ROLES,
    references=("polaris:tagNotSpecified", "kube-score:container-image-tag", "kube-linter:latest-tag",
                "checkov:CKV_K8S_14"),
)
def image_tag_mutable(container: Container, workload: Workload, params: NoParams) -> Fail | None:
    image = container.spec.get("image")
    if not isinstance(image, str) or has_digest(image):
        return None
    tag = image_tag(image)
    if tag is None:
        return fail(image=image, problem="has no tag (means latest)")
    if tag == "latest":
        return fail(image=image, problem="uses the mutable tag latest")
    return None
