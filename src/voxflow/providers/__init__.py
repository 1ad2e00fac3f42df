"""Adapters to outside AI services (LLM, and later speech), behind small vendor-neutral
interfaces so the engine and tests never depend on an SDK."""
