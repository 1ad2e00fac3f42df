"""Voxflow: voice AI agents as versioned workflows."""
