"""Create + fill the naive baseline's table: 1000 rows, each a graph of 50 nodes.

Copied from shared/baselines/control_plane/seed.py. Adapted: the row count comes from SEED_ROWS
and each graph is padded to TARGET_BYTES of JSON (when set), so the baseline reads rows of the
same size as the Voxflow documents it is compared with.
"""

import asyncio
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(__file__))
from app import Base, Session, Workflow, engine

TYPES = ["say", "listen", "llm", "tool", "branch", "transfer", "end"]
ROWS = int(os.environ.get("SEED_ROWS", "1000"))
TARGET_BYTES = int(os.environ.get("TARGET_BYTES", "0"))


def _size(graph: dict) -> int:
    return len(json.dumps(graph, separators=(",", ":")).encode())


def make_graph(seed: int) -> dict:
    r = random.Random(seed)
    nodes = []
    for i in range(50):
        nodes.append(
            {
                "id": f"n{i}",
                "type": r.choice(TYPES),
                "name": f"Step {i}",
                "position": {"x": r.random() * 1000, "y": r.random() * 1000},
                "config": {"prompt": "Ask for the order id.", "retries": r.randint(0, 3)},
            }
        )
    edges = [
        {
            "id": f"e{i}",
            "source": f"n{i}",
            "target": f"n{i + 1}",
            "condition": None if i % 3 else "intent == 'yes'",
        }
        for i in range(49)
    ]
    graph = {"nodes": nodes, "edges": edges}
    missing = TARGET_BYTES - _size(graph)
    if missing > 0:
        pad = " Then confirm it back to the caller."
        per_node = missing // len(nodes)
        for node in nodes:
            node["config"]["prompt"] += (pad * (per_node // len(pad) + 1))[:per_node]
    return graph


async def main() -> None:
    async with engine.begin() as c:
        await c.run_sync(Base.metadata.drop_all)
        await c.run_sync(Base.metadata.create_all)
    async with Session() as s:
        s.add_all(
            [
                Workflow(id=i, name=f"workflow {i}", version=1, graph=make_graph(i))
                for i in range(1, ROWS + 1)
            ]
        )
        await s.commit()
    print("doc bytes (row 1):", _size(make_graph(1)))
    await engine.dispose()


asyncio.run(main())
