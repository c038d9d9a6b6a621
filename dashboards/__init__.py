"""Pulse's Grafana dashboards as code; `make dashboards` writes the JSON next to this file."""
