"""The workflow interpreter: runs a compiled `voxflow/v1` version turn by turn.

Pure: no database, FastAPI, LiveKit or settings. The LLM, the tools and the clock are injected,
so text sessions, scenario tests and voice calls all run the very same code.
"""
