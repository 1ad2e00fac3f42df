"""`GET /v1/workflows/{id}`, the API's hot path: the response bytes, cached per process.

A draft is stored as canonical JSON, so the response is spliced together rather than parsed
and re-serialised, and the finished bytes are kept in an `EpochCache`: every change to the
workflow (`WORKFLOW_TOPIC`) bumps its epoch in Redis after commit, so no process serves an
old draft once the write has answered. Without Redis every read goes to the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxflow.core.cache import EpochCache
from voxflow.core.context import AppContext
from voxflow.core.errors import NotFound
from voxflow.orgs.auth import AuthSubject
from voxflow.workflows.repository import WorkflowRepository
from voxflow.workflows.schemas import WorkflowSummary
from voxflow.workflows.service import WORKFLOW_TOPIC, etag_for

_CACHE = "workflow_draft_views"


@dataclass(frozen=True, slots=True)
class DraftView:
    org_id: str
    body: bytes
    etag: str


def draft_view_cache(context: AppContext) -> EpochCache[DraftView]:
    cache: EpochCache[DraftView] | None = context.extras.get(_CACHE)
    if cache is None:
        settings = context.settings
        cache = EpochCache[DraftView](
            context.epochs,
            WORKFLOW_TOPIC,
            ttl_seconds=settings.read_cache_seconds,
            max_bytes=settings.read_cache_mb * 1024 * 1024,
            size_of=lambda view: len(view.body) + 200,
        )
        context.extras[_CACHE] = cache
    return cache


async def read_draft_view(context: AppContext, auth: AuthSubject, workflow_id: str) -> DraftView:
    """Takes the context, not a session: a cached read opens no database session at all."""
    cache = draft_view_cache(context)
    # The epoch is read before the row: a write committed in between bumps it past this one,
    # so what is stored below is dropped on the next lookup instead of served.
    epoch = await cache.epoch(workflow_id)
    view = cache.get(workflow_id, epoch)
    # Keyed by workflow id alone; the org check keeps another org's id a plain 404.
    if view is not None and view.org_id == auth.org_id:
        return view
    async with context.read_sessionmaker() as session:
        row = await WorkflowRepository(session).get_draft_view(auth.org_id, workflow_id)
    if row is None:
        raise NotFound(f"No workflow {workflow_id}.")
    wf_id, name, revision, latest, created, updated, archived_at, draft = row
    # The summary through its model, so times read as in every other response ("…Z").
    head = WorkflowSummary(
        id=wf_id,
        name=name,
        revision=revision,
        latest_version=latest,
        created_at=created,
        updated_at=updated,
        archived=archived_at is not None,
    ).model_dump_json()
    view = DraftView(auth.org_id, f'{head[:-1]},"draft":{draft}}}'.encode(), etag_for(revision))
    cache.put(workflow_id, view, epoch)
    return view
