"""The Watchdog fires always. Alertmanager sends it to a dead man's switch, which raises the alarm
when it stops arriving: the whole alerting path (rules, Prometheus, Alertmanager) is broken.
"""

from __future__ import annotations

from alerts.config import Config
from alerts.model import Alert, Group, RuleFile

__all__ = ["FILE", "rule_file"]

FILE = "meta.yaml"


def rule_file(config: Config) -> RuleFile:
    watchdog = Alert(
        name="Watchdog",
        expr="vector(1)",
        severity="none",
        summary="The alerting pipeline is working.",
        description=(
            "Always firing. If the dead man's switch stops receiving this alert, Prometheus, "
            "Alertmanager or the path between them is broken."
        ),
    )
    return RuleFile(FILE, __doc__, (Group("meta", (watchdog,)),))
