"""One module per area of alert rules, each written to one file of alerts/rules/."""

from alerts.areas import backends, meta, pipeline, slo, symptoms

AREAS = (slo, symptoms, pipeline, backends, meta)

__all__ = ["AREAS"]
