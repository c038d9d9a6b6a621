"""One module per area of alert rules, each written to one file of alerts/rules/."""

from alerts.areas import backends, meta, pipeline, shared_state, slo, symptoms

AREAS = (slo, symptoms, shared_state, pipeline, backends, meta)

__all__ = ["AREAS"]
