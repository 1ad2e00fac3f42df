"""Runs what the control plane publishes: agents resolved to compiled versions, cached per process.

In the app's lifespan: `await runtime_loader(context).start()` after start-up checks and
`await runtime_loader(context).close()` before `context.close()`.
"""

from voxflow.runtime.loader import LoadedAgent, RuntimeLoader, runtime_loader

__all__ = ["LoadedAgent", "RuntimeLoader", "runtime_loader"]
