# syntax=docker/dockerfile:1
# readiness-operator: multi-stage, slim, non-root. Build: docker build -t readiness-operator:dev .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder: a virtualenv with the runtime dependencies only, each at its version in requirements.lock ---
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY operator/ operator/
# The lock also pins the test tools; as constraints (-c) it fixes versions without installing them.
RUN pip install --constraint requirements.lock . && python -m compileall -q /opt/venv

# -- runtime: the same slim Python, the virtualenv, a numeric non-root user, nothing else --------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="readiness-operator" \
      org.opencontainers.image.source="https://github.com/readiness-operator/readiness-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=builder /opt/venv /opt/venv
# 65532 is the conventional "nonroot" UID; numeric so that runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
EXPOSE 8080 8081 9443
# Exec form: no shell is needed at runtime, and SIGTERM reaches Python directly.
ENTRYPOINT ["/opt/venv/bin/python", "-m", "readiness.controller"]
