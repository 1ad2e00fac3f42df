"""Agents: deployments of a workflow version, with pinning, canary and overrides."""
