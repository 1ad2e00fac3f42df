"""Scenario tests (`voxflow test`) and the terminal chat (`voxflow chat`).

A scenario file (`*.scenario.yaml`, see `model`) plays a conversation against a workflow and
checks what the agent said, where the call stands and which variables it set after each turn.
`runner` drives the engine offline with stubbed tools; `report` prints pytest-like lines and
writes JUnit XML. Modules are imported where used: `voxflow.cli` stays quick to start.
"""
