"""The Kopf operator: a thin shell around the engine (see DEVELOPERS.md, "Kopf at scale").

`build(settings)` returns the handler registry, Kopf's settings and the shared runtime; `run(settings)`
runs them until a signal. `python -m readiness.controller --help` lists the settings.
"""

from readiness.controller.app import build, kopf_settings, run
from readiness.controller.settings import OperatorSettings

__all__ = ["OperatorSettings", "build", "kopf_settings", "run"]
