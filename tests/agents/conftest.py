"""Fixtures shared by the agent tests."""

from __future__ import annotations

import httpx
import pytest

from support import OrgHandle, create_workflow, publish, replace_draft, workflow_document


@pytest.fixture
async def workflow_id(client: httpx.AsyncClient, org: OrgHandle) -> str:
    """A workflow with versions 1 and 2 published."""
    workflow_id = await create_workflow(client, org)
    await publish(client, org, workflow_id)
    await replace_draft(client, org, workflow_id, workflow_document(greeting="Version two."))
    await publish(client, org, workflow_id)
    return workflow_id
