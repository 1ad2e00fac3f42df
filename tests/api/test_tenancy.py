"""Nothing crosses orgs: another org's id answers exactly like an id that does not exist.

The walk goes over every operation of the OpenAPI document that takes a path parameter, so a
route added later is covered without touching this file — or makes it fail loudly when it takes a
parameter this file does not know how to fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from support import OrgHandle, create_workflow, publish, replace_draft, workflow_document
from voxflow.audit.service import SYSTEM
from voxflow.core.context import AppContext
from voxflow.core.ids import new_id
from voxflow.integrations.oauth import TokenSet
from voxflow.integrations.providers import airtable
from voxflow.integrations.repository import transaction
from voxflow.integrations.service import create_connection
from voxflow.vault.vault import get_vault

PROBLEM = "application/problem+json"
METHODS = ("get", "put", "post", "patch", "delete")

# A valid body per request schema, so a write is refused for the id and not for the body.
BODIES: dict[str, Any] = {
    "WorkflowDocument": workflow_document("Hijacked", "Someone else's words."),
    "AgentUpdate": {"name": "hijacked", "version": 1, "canary": None},
    "UserText": {"text": "let me in"},
    "SecretUpdate": {"value": "hijacked"},
    "WebhookUpdate": {"description": "hijacked"},
}
# `*` matches any draft: only the org check may stop a write.
HEADERS = {"If-Match": "*"}
# Path parameters naming what every org shares (an OAuth provider), not an org's resource.
SHARED_PARAMETERS = frozenset({"provider"})
# Reads of what org A's call does not have (a text call has no recording): 404 for org A too.
ABSENT_FOR_ORG_A = frozenset({"GET /v1/calls/{call_id}/recording"})


@dataclass(frozen=True)
class Resources:
    """One of everything, owned by org A."""

    workflow_id: str
    agent_id: str
    key_id: str
    key: str
    call_id: str
    secret_name: str
    connection_id: str
    webhook_id: str

    def path_values(self) -> dict[str, str]:
        return {
            "workflow_id": self.workflow_id,
            "number": "1",
            "old": "1",
            "new": "2",
            "agent_id": self.agent_id,
            "key_id": self.key_id,
            "session_id": self.call_id,
            "call_id": self.call_id,
            "name": self.secret_name,
            "connection_id": self.connection_id,
            "webhook_id": self.webhook_id,
        }


def missing_values() -> dict[str, str]:
    """Well-formed ids that exist nowhere; the same version numbers."""
    return {
        "workflow_id": new_id("wf"),
        "number": "1",
        "old": "1",
        "new": "2",
        "agent_id": new_id("agt"),
        "key_id": new_id("key"),
        "session_id": (call_id := new_id("call")),
        "call_id": call_id,
        "name": "NO_SUCH_SECRET",
        "connection_id": new_id("con"),
        "webhook_id": new_id("wh"),
    }


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    params: tuple[str, ...]
    body_schema: str | None

    def url(self, values: dict[str, str]) -> str:
        url = self.template
        for name in self.params:
            url = url.replace("{" + name + "}", values[name])
        return url

    async def call(
        self, client: httpx.AsyncClient, org: OrgHandle, values: dict[str, str]
    ) -> httpx.Response:
        body = BODIES[self.body_schema] if self.body_schema else None
        return await client.request(
            self.method, self.url(values), json=body, headers={**org.headers, **HEADERS}
        )

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.template}"


def operations_with_path_parameters(app: FastAPI) -> list[Operation]:
    found = []
    known = set(missing_values())
    for template, item in app.openapi()["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            params = tuple(p["name"] for p in operation.get("parameters", []) if p["in"] == "path")
            if not params or SHARED_PARAMETERS & set(params):
                continue
            unknown = set(params) - known
            if unknown:
                pytest.fail(
                    f"{method.upper()} {template} takes path parameter(s) {sorted(unknown)}: "
                    "teach test_tenancy.py org A's value and a missing value for each"
                )
            found.append(Operation(method, template, params, _body_schema(operation)))
    return found


def _body_schema(operation: dict[str, Any]) -> str | None:
    content = operation.get("requestBody", {}).get("content", {})
    if not content:
        return None
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    if name not in BODIES:
        pytest.fail(f"no valid body for request schema {name or content!r}: add one to BODIES")
    return name


async def _connection(context: AppContext, org: OrgHandle) -> str:
    vault = await get_vault(context)
    tokens = TokenSet("access", "refresh", "Bearer", None, "data.records:read")
    async with transaction(context) as session:
        connection = await create_connection(
            session,
            vault,
            org_id=org.id,
            provider=airtable(context.settings),
            name="CRM",
            tokens=tokens,
            actor=SYSTEM,
        )
    return connection.id


@pytest.fixture
async def resources(client: httpx.AsyncClient, context: AppContext, org: OrgHandle) -> Resources:
    workflow_id = await create_workflow(client, org)
    await publish(client, org, workflow_id)
    await replace_draft(client, org, workflow_id, workflow_document(greeting="Version two."))
    await publish(client, org, workflow_id)
    agent = await client.post(
        "/v1/agents",
        json={"name": "luigis", "workflow_id": workflow_id, "version": 2},
        headers=org.headers,
    )
    assert agent.status_code == 201, agent.text
    key = await client.post(
        "/v1/api-keys", json={"name": "ci", "role": "admin"}, headers=org.headers
    )
    assert key.status_code == 201, key.text
    call = await client.post(
        "/v1/sessions", json={"agent_id": agent.json()["id"]}, headers=org.headers
    )
    assert call.status_code == 201, call.text
    secret = await client.post(
        "/v1/secrets", json={"name": "CRM_KEY", "value": "crm-123"}, headers=org.headers
    )
    assert secret.status_code == 201, secret.text
    webhook = await client.post(
        "/v1/webhooks",
        # A public address written as an IP: nothing to resolve, and nothing is ever sent.
        json={"url": "https://93.184.215.14/hook", "events": ["call.ended"]},
        headers=org.headers,
    )
    assert webhook.status_code == 201, webhook.text
    return Resources(
        workflow_id,
        agent.json()["id"],
        key.json()["id"],
        key.json()["key"],
        call.json()["session_id"],
        secret.json()["name"],
        await _connection(context, org),
        webhook.json()["id"],
    )


async def snapshot(
    client: httpx.AsyncClient, org: OrgHandle, resources: Resources, reads: list[Operation]
) -> dict[str, Any]:
    """Everything org A can read about its resources."""
    state: dict[str, Any] = {}
    for operation in reads:
        response = await operation.call(client, org, resources.path_values())
        if str(operation) in ABSENT_FOR_ORG_A:
            assert response.status_code == 404, f"{operation} as org A: {response.text}"
            continue
        assert response.status_code == 200, f"{operation} as org A: {response.text}"
        state[str(operation)] = (response.json(), response.headers.get("etag"))
    for listing in ("/v1/workflows", "/v1/agents", "/v1/api-keys"):
        items = (await client.get(listing, headers=org.headers)).json()["items"]
        state[listing] = sorted(item["id"] for item in items)
    return state


def _comparable(response: httpx.Response, ids: dict[str, str]) -> dict[str, Any]:
    body = response.json()
    detail = body.get("detail", "")
    for name, value in ids.items():
        if name.endswith("_id") or name == "name":
            detail = detail.replace(value, "{" + name + "}")
    return {
        "status": response.status_code,
        "content-type": response.headers["content-type"],
        "type": body.get("type"),
        "title": body.get("title"),
        "detail": detail,
    }


class TestAnotherOrgsIds:
    async def test_every_operation_answers_404_exactly_like_a_missing_id(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        org: OrgHandle,
        other_org: OrgHandle,
        resources: Resources,
    ) -> None:
        operations = operations_with_path_parameters(app)
        assert len(operations) >= 12, [str(o) for o in operations]
        reads = [o for o in operations if o.method == "get"]
        before = await snapshot(client, org, resources, reads)

        mismatches = []
        for operation in operations:
            theirs = await operation.call(client, other_org, resources.path_values())
            missing = missing_values()
            absent = await operation.call(client, other_org, missing)
            got = _comparable(theirs, resources.path_values())
            expected = _comparable(absent, missing)
            if got != expected or got["status"] != 404 or got["content-type"] != PROBLEM:
                mismatches.append((str(operation), got, expected))

        assert mismatches == []
        assert await snapshot(client, org, resources, reads) == before

    async def test_org_a_keeps_its_api_key(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        other_org: OrgHandle,
        resources: Resources,
    ) -> None:
        revoke = await client.delete(f"/v1/api-keys/{resources.key_id}", headers=other_org.headers)

        assert revoke.status_code == 404
        me = await client.get("/v1/me", headers={"Authorization": f"Bearer {resources.key}"})
        assert me.status_code == 200
        assert me.json()["api_key"]["id"] == resources.key_id
