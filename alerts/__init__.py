"""Pulse's alerting as code: the monitoring config, the rule areas, and the generator of
alerts/rules/*.yaml."""
