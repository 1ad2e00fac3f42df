"""The naive control-plane read Voxflow is measured against (copied from
shared/baselines/control_plane/app.py; adapted only where noted).

FastAPI + SQLAlchemy 2 async + asyncpg: GET /w/{id} loads one row (a JSONB graph of 50 nodes,
~11 KB) and returns it through a nested Pydantic response model. GET /healthz -> {"ok": true}.
env: DB_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/bench)
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import JSON

# Adapted: the original uses orjson, which is not a Voxflow dependency. Use it when present,
# else the standard library (it only decodes the JSONB column; a small share of the time).
_dumps: Callable[[Any], str]
_loads: Callable[[str | bytes], Any]
try:
    import orjson

    def _dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

    _loads = orjson.loads
    JSON_LIBRARY = "orjson"
except ImportError:
    _dumps, _loads = json.dumps, json.loads
    JSON_LIBRARY = "json"

DB_URL = os.environ.get("DB_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
IS_PG = DB_URL.startswith("postgresql")


class Base(DeclarativeBase):
    pass


class Workflow(Base):
    __tablename__ = "workflows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    graph: Mapped[dict[str, Any]] = mapped_column(JSONB if IS_PG else JSON)


class Position(BaseModel):
    x: float
    y: float


class Node(BaseModel):
    id: str
    type: str
    name: str
    position: Position
    config: dict[str, Any]


class Edge(BaseModel):
    id: str
    source: str
    target: str
    condition: str | None = None


class Graph(BaseModel):
    nodes: list[Node]
    edges: list[Edge]


class WorkflowOut(BaseModel):
    id: int
    name: str
    version: int
    graph: Graph


engine_kw: dict[str, Any] = dict(json_serializer=_dumps, json_deserializer=_loads)
if IS_PG:
    engine_kw.update(pool_size=10, max_overflow=10)
engine = create_async_engine(DB_URL, **engine_kw)
Session = async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/w/{wid}", response_model=WorkflowOut)
async def get_workflow(wid: int) -> Any:
    async with Session() as s:
        row = await s.get(Workflow, wid)
    if row is None:
        raise HTTPException(404)
    # validated + serialised by response_model
    return {"id": row.id, "name": row.name, "version": row.version, "graph": row.graph}
