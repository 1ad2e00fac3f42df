"""One "server process" of `test_two_processes.py`: concurrent token lookups of one connection.

Configured by VOXFLOW_* variables like a real server. Prints READY once set up, waits for a line
on stdin so that both processes start their lookups together, then prints RESULT and the tokens.

    python token_worker.py ORG_ID CONNECTION_NAME LOOKUPS
"""

from __future__ import annotations

import asyncio
import json
import sys

from voxflow.core.context import AppContext
from voxflow.core.logging import configure_logging
from voxflow.core.settings import Settings
from voxflow.integrations.tokens import OrgConnections
from voxflow.tools.registry import ToolError
from voxflow.vault.vault import get_vault


async def main(org_id: str, name: str, lookups: int) -> None:
    configure_logging("warning", "json")  # to stderr: stdout carries the reports
    context = AppContext.create(Settings())
    try:
        await get_vault(context)
        connections = OrgConnections(context, org_id)
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

        async def lookup() -> str:
            try:
                return await connections.access_token(name, provider="generic")
            except ToolError as exc:
                return f"error: {exc.message}"

        tokens = await asyncio.gather(*(lookup() for _ in range(lookups)))
        print("RESULT", json.dumps(tokens), flush=True)
    finally:
        await context.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
