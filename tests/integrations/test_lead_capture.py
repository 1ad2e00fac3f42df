"""examples/lead_capture.yaml end to end: published against the org's real Airtable connection
(its tables checked), then a caller's lead saved through the Airtable API, faked at HTTP."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from integrations.oauth_support import Person, stored_connection, unique
from support import deploy
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.integrations.oauth import TokenSet

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lead_capture.yaml"
AIRTABLE = "https://api.airtable.com"
BASE = "appVoxflowLeads01"
TABLES = {"tables": [{"id": "tblLeads000000001", "name": "Leads", "fields": []}]}


@pytest.fixture
def airtable() -> respx.MockRouter:
    with respx.mock(base_url=AIRTABLE, assert_all_called=False) as router:
        yield router  # type: ignore[misc]


async def say(web: httpx.AsyncClient, person: Person, session_id: str, text: str) -> str:
    response = await web.post(
        f"/v1/sessions/{session_id}/turns", json={"text": text}, headers=person.org.headers
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return " ".join(m["text"] for m in messages if m["type"] == "agent_text")


async def test_a_caller_becomes_a_lead_in_airtable(
    web: httpx.AsyncClient,
    admin: Person,
    oauth_context: AppContext,
    airtable: respx.MockRouter,
) -> None:
    access_token = unique("access")
    tokens = TokenSet(
        access_token=access_token,
        refresh_token=unique("refresh"),
        token_type="Bearer",
        expires_at=utcnow() + timedelta(minutes=50),
        scope="data.records:write schema.bases:read",
    )
    await stored_connection(
        oauth_context, admin.org_id, provider="airtable", name="Sales CRM", tokens=tokens
    )
    tables = airtable.get(f"/v0/meta/bases/{BASE}/tables").respond(json=TABLES)
    created = airtable.post(f"/v0/{BASE}/Leads").respond(
        json={
            "records": [
                {
                    "id": "recLead0000000001",
                    "createdTime": "2026-11-26T10:00:00.000Z",
                    "fields": {"Name": "Ana Lopez", "Email": "ana.lopez@example.com"},
                }
            ]
        }
    )

    agent = await deploy(web, admin.org, EXAMPLE.read_bytes(), name=unique("leads")[:40])
    started = await web.post(
        "/v1/sessions", json={"agent_id": agent.agent_id}, headers=admin.org.headers
    )
    session_id = started.json()["session_id"]
    await say(web, admin, session_id, "yes please")
    await say(web, admin, session_id, "my name is Ana Lopez")
    await say(web, admin, session_id, "it's ana dot lopez at example dot com")
    await say(web, admin, session_id, "yes")
    closing = await say(web, admin, session_id, "how much it would cost")
    record = await web.get(f"/v1/calls/{session_id}", headers=admin.org.headers)

    assert tables.called  # publish checked the table exists in the connection's base
    request = created.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {access_token}"
    assert json.loads(request.content) == {
        "records": [
            {
                "fields": {
                    "Name": "Ana Lopez",
                    "Email": "ana.lopez@example.com",
                    "Interest": "pricing",
                    "Source": "Phone",
                }
            }
        ],
        "typecast": True,
    }
    assert "our sales team will email ana.lopez@example.com" in closing
    assert record.json()["outcome"] == "completed"
    assert access_token not in record.text


async def test_publish_refuses_an_unknown_connection_or_table(
    web: httpx.AsyncClient, admin: Person, airtable: respx.MockRouter
) -> None:
    document = EXAMPLE.read_text().replace("connection: Sales CRM", "connection: Nobody's CRM")
    created = await web.post(
        "/v1/workflows",
        content=document.encode(),
        headers={**admin.org.headers, "Content-Type": "application/yaml"},
    )
    published = await web.post(
        f"/v1/workflows/{created.json()['id']}/publish", headers=admin.org.headers
    )

    assert published.status_code == 422
    [error] = published.json()["errors"]
    assert error["detail"].startswith("unknown_connection")
    assert error["pointer"].endswith("/args/connection")
