"""The workflow read cache: every process serves the current draft once a write answered.

Two app instances on one database and one Redis stand for two `voxflow serve` processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from support import (
    OrgHandle,
    client_for,
    configured_app,
    create_workflow,
    new_org,
    publish,
    replace_draft,
    workflow_document,
)
from voxflow.core.context import AppContext
from voxflow.workflows.draft_view import draft_view_cache


@dataclass
class Process:
    app: FastAPI
    client: httpx.AsyncClient

    async def cached(self, workflow_id: str) -> bool:
        cache = draft_view_cache(self.app.state.context)
        return cache.get(workflow_id, await cache.epoch(workflow_id)) is not None


@asynccontextmanager
async def two_processes(database_url: str, **settings: object) -> AsyncIterator[list[Process]]:
    async with (
        configured_app(database_url, **settings) as app_a,
        configured_app(database_url, **settings) as app_b,
        client_for(app_a) as a,
        client_for(app_b) as b,
    ):
        yield [Process(app_a, a), Process(app_b, b)]


async def _read(process: Process, org: OrgHandle, workflow_id: str) -> httpx.Response:
    response = await process.client.get(f"/v1/workflows/{workflow_id}", headers=org.headers)
    assert response.status_code == 200, response.text
    return response


async def test_a_saved_draft_is_read_back_by_every_process(
    database_url: str, redis_url: str, context: AppContext
) -> None:
    org = await new_org(context)
    async with two_processes(database_url, redis_url=redis_url) as (reader, writer):
        workflow_id = await create_workflow(writer.client, org)
        before = await _read(reader, org, workflow_id)
        assert await reader.cached(workflow_id)

        await replace_draft(
            writer.client, org, workflow_id, workflow_document(greeting="Now open until 1 am.")
        )
        after = await _read(reader, org, workflow_id)

    assert after.json()["draft"]["nodes"][0]["text"] == "Now open until 1 am."
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["revision"] == before.json()["revision"] + 1


async def test_publish_and_archive_show_at_once_in_other_processes(
    database_url: str, redis_url: str, context: AppContext
) -> None:
    org = await new_org(context)
    async with two_processes(database_url, redis_url=redis_url) as (reader, writer):
        workflow_id = await create_workflow(writer.client, org)
        assert (await _read(reader, org, workflow_id)).json()["latest_version"] == 0

        await publish(writer.client, org, workflow_id)
        published = await _read(reader, org, workflow_id)
        deleted = await writer.client.delete(f"/v1/workflows/{workflow_id}", headers=org.headers)
        archived = await _read(reader, org, workflow_id)

    assert published.json()["latest_version"] == 1
    assert deleted.status_code == 204
    assert archived.json()["archived"] is True


async def test_a_cached_workflow_is_still_404_for_another_org(
    database_url: str, redis_url: str, context: AppContext
) -> None:
    org, stranger = await new_org(context), await new_org(context, "elsewhere")
    async with two_processes(database_url, redis_url=redis_url) as (process, _):
        workflow_id = await create_workflow(process.client, org)
        await _read(process, org, workflow_id)
        assert await process.cached(workflow_id)

        response = await process.client.get(
            f"/v1/workflows/{workflow_id}", headers=stranger.headers
        )

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_refused_write_leaves_the_cached_draft_in_place(
    database_url: str, redis_url: str, context: AppContext
) -> None:
    org = await new_org(context)
    async with two_processes(database_url, redis_url=redis_url) as (process, _):
        workflow_id = await create_workflow(process.client, org)
        first = await _read(process, org, workflow_id)

        stale = await process.client.put(
            f"/v1/workflows/{workflow_id}",
            json=workflow_document(greeting="lost edit"),
            headers={**org.headers, "If-Match": '"999"'},
        )

        assert stale.status_code == 412
        assert await process.cached(workflow_id)
        assert (await _read(process, org, workflow_id)).content == first.content


async def test_without_redis_reads_come_from_the_database(
    database_url: str, context: AppContext
) -> None:
    org = await new_org(context)
    async with two_processes(database_url) as (reader, writer):
        workflow_id = await create_workflow(writer.client, org)
        await _read(reader, org, workflow_id)
        await replace_draft(writer.client, org, workflow_id, workflow_document(name="Renamed"))
        after = await _read(reader, org, workflow_id)

        assert not await reader.cached(workflow_id)
    assert after.json()["name"] == "Renamed"
