"""Secrets over the API: stored encrypted, never shown, every change and read audited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from sqlalchemy import select, text

from support import Deployed, OrgHandle, any_in_files, deploy
from voxflow.audit import service as audit_service
from voxflow.core.context import AppContext
from voxflow.vault.models import Secret

VALUE = "crm-live-7f3a9c1e5d"
CRM = "https://crm.example.com"


async def create(
    client: httpx.AsyncClient, org: OrgHandle, name: str = "CRM_TOKEN", value: str = VALUE
) -> httpx.Response:
    return await client.post(
        "/v1/secrets",
        json={"name": name, "value": value, "description": "CRM API token"},
        headers=org.headers,
    )


async def audit(client: httpx.AsyncClient, org: OrgHandle, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit", params=params, headers=org.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestSecretsApi:
    async def test_create_lists_metadata_and_never_the_value(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        created = await create(client, org)
        listed = await client.get("/v1/secrets", headers=org.headers)
        one = await client.get("/v1/secrets/CRM_TOKEN", headers=org.headers)

        assert created.status_code == 201
        assert created.json()["name"] == "CRM_TOKEN"
        assert created.json()["last_used_at"] is None
        assert [item["name"] for item in listed.json()["items"]] == ["CRM_TOKEN"]
        assert one.json()["description"] == "CRM API token"
        for response in (created, listed, one):
            assert VALUE not in response.text
            assert "value" not in response.text

    async def test_the_value_is_stored_encrypted_for_its_org_and_row(
        self, client: httpx.AsyncClient, org: OrgHandle, context: AppContext
    ) -> None:
        await create(client, org)
        async with context.sessionmaker() as session:
            row = await session.scalar(select(Secret).where(Secret.org_id == org.id))
        assert row is not None
        assert VALUE not in row.ciphertext
        assert row.ciphertext.startswith("v1.")

    async def test_the_database_file_never_holds_the_value_in_clear(
        self, client: httpx.AsyncClient, org: OrgHandle, database_url: str
    ) -> None:
        if not database_url.startswith("sqlite"):
            pytest.skip("a file to read exists on SQLite only (PostgreSQL: the row test above)")
        marker = "needle-" + org.id
        await create(client, org, name="NEEDLE", value=marker)
        database = Path(database_url.split(":///", 1)[1])
        files = [database, *database.parent.glob(database.name + "-*")]  # -wal, -journal

        assert not await any_in_files(files, [marker])

    async def test_a_taken_name_is_a_conflict(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        await create(client, org)
        again = await create(client, org, value="other")
        assert again.status_code == 409
        assert "PUT /v1/secrets/CRM_TOKEN" in again.json()["detail"]

    @pytest.mark.parametrize(
        ("body", "pointer"),
        [
            ({"name": "1BAD", "value": "x"}, "/name"),
            ({"name": "has-dash", "value": "x"}, "/name"),
            ({"name": "OK", "value": ""}, "/value"),
            ({"name": "OK"}, "/value"),
            ({"name": "OK", "value": "x" * (64 * 1024 + 1)}, "/value"),
        ],
    )
    async def test_bad_input_is_a_problem_pointing_at_the_field(
        self, client: httpx.AsyncClient, org: OrgHandle, body: dict[str, Any], pointer: str
    ) -> None:
        response = await client.post("/v1/secrets", json=body, headers=org.headers)

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert [error["pointer"] for error in response.json()["errors"]] == [pointer]
        if "value" in body and len(body["value"]) > 1:
            assert body["value"][:50] not in response.text

    async def test_put_replaces_the_value_and_delete_erases_it(
        self, client: httpx.AsyncClient, org: OrgHandle, context: AppContext
    ) -> None:
        await create(client, org)
        async with context.sessionmaker() as session:
            before = await session.scalar(select(Secret.ciphertext).where(Secret.org_id == org.id))
        replaced = await client.put(
            "/v1/secrets/CRM_TOKEN", json={"value": "new-value-123"}, headers=org.headers
        )
        async with context.sessionmaker() as session:
            after = await session.scalar(select(Secret.ciphertext).where(Secret.org_id == org.id))
        deleted = await client.delete("/v1/secrets/CRM_TOKEN", headers=org.headers)
        gone = await client.get("/v1/secrets/CRM_TOKEN", headers=org.headers)
        missing_put = await client.put(
            "/v1/secrets/CRM_TOKEN", json={"value": "x"}, headers=org.headers
        )

        assert replaced.status_code == 200
        assert before != after
        assert deleted.status_code == 204
        assert gone.status_code == 404
        assert missing_put.status_code == 404

    async def test_members_cannot_write_and_audit_is_for_admins(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        member = await client.post(
            "/v1/api-keys", json={"name": "viewer", "role": "member"}, headers=org.headers
        )
        headers = {"Authorization": f"Bearer {member.json()['key']}"}

        write = await client.post("/v1/secrets", json={"name": "X", "value": "y"}, headers=headers)
        listing = await client.get("/v1/secrets", headers=headers)
        audit_log = await client.get("/v1/audit", headers=headers)

        assert write.status_code == 403
        assert listing.status_code == 200
        assert audit_log.status_code == 403


class TestAudit:
    async def test_create_update_delete_are_recorded_without_the_value(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        await create(client, org)
        await client.put("/v1/secrets/CRM_TOKEN", json={"value": "v2-value"}, headers=org.headers)
        await client.delete("/v1/secrets/CRM_TOKEN", headers=org.headers)
        response = await client.get("/v1/audit", headers=org.headers)

        events = response.json()["items"]
        assert [event["action"] for event in events] == [
            "secret.deleted",
            "secret.updated",
            "secret.created",
        ]
        assert {event["target_name"] for event in events} == {"CRM_TOKEN"}
        assert {event["actor_type"] for event in events} == {"api_key"}
        assert VALUE not in response.text
        assert "v2-value" not in response.text

    async def test_filters_by_action_family(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        await create(client, org)
        await client.delete("/v1/secrets/CRM_TOKEN", headers=org.headers)

        assert len(await audit(client, org, action="secret")) == 2
        assert [e["action"] for e in await audit(client, org, action="secret.deleted")] == [
            "secret.deleted"
        ]

    async def test_when_the_audit_write_fails_the_operation_fails(
        self, client: httpx.AsyncClient, org: OrgHandle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from voxflow.vault import service as vault_service

        async def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("audit table unavailable")

        monkeypatch.setattr(vault_service, "record_audit", broken)
        response = await create(client, org)
        monkeypatch.undo()
        listed = await client.get("/v1/secrets", headers=org.headers)

        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "audit table" not in response.text
        assert listed.json()["items"] == []

    async def test_audit_rows_are_flushed_at_once(
        self, context: AppContext, org: OrgHandle
    ) -> None:
        # A failing audit insert must surface inside the operation, not at commit time.
        async with context.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
            with pytest.raises(Exception, match=r"(?i)foreign|constraint|violat"):
                await audit_service.record_audit(
                    session,
                    org_id="org_missing",
                    actor=audit_service.SYSTEM,
                    action="secret.read",
                    target_type="secret",
                    target_id="sec_x",
                )


WORKFLOW = {
    "schema": "voxflow/v1",
    "name": "CRM lookup",
    "start": "lookup",
    "variables": {"customer": {"type": "object"}},
    "nodes": [
        {
            "id": "lookup",
            "type": "action",
            "tool": "http.request",
            "args": {
                "url": f"{CRM}/customers/42",
                "headers": {"Authorization": "Bearer {{ secrets.CRM_TOKEN }}"},
            },
            "result": "customer",
            "next": "found",
            "on_error": "sorry",
        },
        {"id": "found", "type": "say", "text": "Found you.", "next": "bye"},
        {"id": "sorry", "type": "say", "text": "The CRM is unavailable.", "next": "bye"},
        {"id": "bye", "type": "end", "text": "Goodbye!"},
    ],
}


@pytest.fixture
async def crm_agent(client: httpx.AsyncClient, org: OrgHandle) -> Deployed:
    return await deploy(client, org, yaml.safe_dump(WORKFLOW).encode(), name="crm")


async def start_call(client: httpx.AsyncClient, agent: Deployed) -> dict[str, Any]:
    response = await client.post(
        "/v1/sessions", json={"agent_id": agent.agent_id}, headers=agent.org.headers
    )
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


class TestSecretsInToolArguments:
    async def test_resolved_at_call_time_and_masked_in_the_call_record(
        self, client: httpx.AsyncClient, crm_agent: Deployed
    ) -> None:
        await create(client, crm_agent.org)
        with respx.mock(assert_all_called=True) as crm:
            route = crm.get(f"{CRM}/customers/42").respond(json={"id": 42})
            started = await start_call(client, crm_agent)
        record = await client.get(
            f"/v1/calls/{started['session_id']}", headers=crm_agent.org.headers
        )
        secret = await client.get("/v1/secrets/CRM_TOKEN", headers=crm_agent.org.headers)
        reads = await audit(client, crm_agent.org, action="secret.read")

        assert route.calls.last.request.headers["Authorization"] == f"Bearer {VALUE}"
        assert "Found you." in json.dumps(started["messages"])
        assert VALUE not in record.text
        assert "Bearer [secret CRM_TOKEN]" in record.text
        assert secret.json()["last_used_at"] is not None
        assert [(e["actor_type"], e["actor_id"]) for e in reads] == [
            ("call", started["session_id"])
        ]

    async def test_a_missing_secret_takes_the_error_path_and_says_which(
        self, client: httpx.AsyncClient, crm_agent: Deployed
    ) -> None:
        with respx.mock(assert_all_called=False) as crm:
            route = crm.get(f"{CRM}/customers/42").respond(json={"id": 42})
            started = await start_call(client, crm_agent)
        record = await client.get(
            f"/v1/calls/{started['session_id']}", headers=crm_agent.org.headers
        )

        assert not route.called
        assert "The CRM is unavailable." in json.dumps(started["messages"])
        assert "secret CRM_TOKEN is not set" in record.text

    async def test_a_tool_error_echoing_the_value_is_masked(
        self, client: httpx.AsyncClient, crm_agent: Deployed, capfd: pytest.CaptureFixture[str]
    ) -> None:
        await create(client, crm_agent.org)
        with respx.mock(assert_all_called=False) as crm:
            crm.get(f"{CRM}/customers/42").mock(
                side_effect=httpx.ConnectError(f"refused for token {VALUE}")
            )
            started = await start_call(client, crm_agent)
        record = await client.get(
            f"/v1/calls/{started['session_id']}", headers=crm_agent.org.headers
        )
        out, err = capfd.readouterr()

        assert "The CRM is unavailable." in json.dumps(started["messages"])
        assert VALUE not in record.text
        assert VALUE not in out + err

    async def test_lint_refuses_secrets_outside_tool_arguments(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        leaky = {
            **WORKFLOW,
            "nodes": [
                {
                    "id": "lookup",
                    "type": "say",
                    "text": "Key {{ secrets.CRM_TOKEN }}",
                    "next": "bye",
                },
                {"id": "bye", "type": "end"},
            ],
        }
        created = await client.post("/v1/workflows", json=leaky, headers=org.headers)
        findings = await client.post(
            f"/v1/workflows/{created.json()['id']}/validate", headers=org.headers
        )

        codes = {f["code"]: f["pointer"] for f in findings.json()["findings"]}
        assert codes.get("secret_outside_tool_args") == "/nodes/0/text"
