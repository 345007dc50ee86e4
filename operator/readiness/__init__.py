"""readiness-operator: production-readiness policies that a Kubernetes cluster enforces."""

__version__ = "0.1.0"
