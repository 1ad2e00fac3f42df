"""`/v1/webhooks`: endpoints on public addresses, a secret shown once, every change audited."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from support import OrgHandle
from voxflow.core.context import AppContext
from voxflow.vault.models import Secret
from voxflow.vault.vault import get_vault
from voxflow.webhooks.models import Webhook

# Public addresses written as IPs: nothing to resolve, and these tests never deliver.
PUBLIC_URL = "https://93.184.215.14/hooks/voxflow"


async def create(
    client: httpx.AsyncClient, org: OrgHandle, url: str = PUBLIC_URL, **body: object
) -> httpx.Response:
    return await client.post(
        "/v1/webhooks",
        json={"url": url, "events": ["call.started", "call.ended"], **body},
        headers=org.headers,
    )


async def member_headers(client: httpx.AsyncClient, org: OrgHandle) -> dict[str, str]:
    key = await client.post(
        "/v1/api-keys", json={"name": "reader", "role": "member"}, headers=org.headers
    )
    assert key.status_code == 201, key.text
    return {"Authorization": f"Bearer {key.json()['key']}"}


class TestCreate:
    async def test_the_secret_is_shown_once_and_kept_in_the_vault(
        self, client: httpx.AsyncClient, context: AppContext, org: OrgHandle
    ) -> None:
        response = await create(client, org, description="CRM sync")

        assert response.status_code == 201, response.text
        created = response.json()
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert created["url"] == PUBLIC_URL
        assert created["events"] == ["call.started", "call.ended"]
        listed = await client.get("/v1/webhooks", headers=org.headers)
        one = await client.get(f"/v1/webhooks/{created['id']}", headers=org.headers)
        assert secret not in listed.text
        assert secret not in one.text
        assert "secret" not in one.json()
        assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
        async with context.sessionmaker() as session:
            webhook = await session.get(Webhook, created["id"])
            assert webhook is not None
            row = await session.get(Secret, webhook.secret_id)
        assert row is not None
        assert (row.kind, row.name) == ("webhook", f"webhook:{created['id']}")
        assert secret not in row.ciphertext
        assert (await get_vault(context)).open_row(row).decode() == secret

    async def test_repeated_events_are_kept_once(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await create(client, org, events=["call.ended", "call.ended"])

        assert response.json()["events"] == ["call.ended"]

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
        ],
    )
    async def test_private_loopback_and_metadata_targets_are_refused(
        self, client: httpx.AsyncClient, org: OrgHandle, url: str
    ) -> None:
        response = await create(client, org, url=url)

        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["pointer"] == "/url"
        assert "public addresses only" in response.json()["errors"][0]["detail"]

    @pytest.mark.parametrize("url", ["ftp://93.184.215.14/x", "not a url", "https://"])
    async def test_only_http_urls_are_taken(
        self, client: httpx.AsyncClient, org: OrgHandle, url: str
    ) -> None:
        response = await create(client, org, url=url)

        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/url"

    async def test_unknown_events_are_refused(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await create(client, org, events=["call.exploded"])

        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"].startswith("/events")

    async def test_members_read_but_do_not_write(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        webhook_id = (await create(client, org)).json()["id"]
        member = await member_headers(client, org)

        assert (await client.get(f"/v1/webhooks/{webhook_id}", headers=member)).status_code == 200
        refused = await client.post(
            "/v1/webhooks", json={"url": PUBLIC_URL, "events": ["call.ended"]}, headers=member
        )
        assert refused.status_code == 403
        gone = await client.delete(f"/v1/webhooks/{webhook_id}", headers=member)
        assert gone.status_code == 403


class TestChange:
    async def test_patch_changes_only_the_fields_sent(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        webhook_id = (await create(client, org, description="old")).json()["id"]

        response = await client.patch(
            f"/v1/webhooks/{webhook_id}", json={"events": ["call.ended"]}, headers=org.headers
        )

        assert response.status_code == 200, response.text
        assert response.json()["events"] == ["call.ended"]
        assert response.json()["description"] == "old"
        assert response.json()["url"] == PUBLIC_URL

    async def test_patch_refuses_a_private_url_too(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        webhook_id = (await create(client, org)).json()["id"]

        response = await client.patch(
            f"/v1/webhooks/{webhook_id}", json={"url": "http://10.0.0.7/"}, headers=org.headers
        )

        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/url"
        kept = await client.get(f"/v1/webhooks/{webhook_id}", headers=org.headers)
        assert kept.json()["url"] == PUBLIC_URL

    async def test_rotation_gives_a_new_secret(
        self, client: httpx.AsyncClient, context: AppContext, org: OrgHandle
    ) -> None:
        created = (await create(client, org)).json()

        response = await client.post(
            f"/v1/webhooks/{created['id']}/rotate-secret", headers=org.headers
        )

        assert response.status_code == 200, response.text
        new_secret = response.json()["secret"]
        assert new_secret.startswith("whsec_")
        assert new_secret != created["secret"]
        async with context.sessionmaker() as session:
            row = await session.scalar(
                select(Secret).where(Secret.name == f"webhook:{created['id']}")
            )
        assert row is not None
        assert (await get_vault(context)).open_row(row).decode() == new_secret

    async def test_delete_erases_the_vault_row(
        self, client: httpx.AsyncClient, context: AppContext, org: OrgHandle
    ) -> None:
        webhook_id = (await create(client, org)).json()["id"]

        response = await client.delete(f"/v1/webhooks/{webhook_id}", headers=org.headers)

        assert response.status_code == 204
        again = await client.get(f"/v1/webhooks/{webhook_id}", headers=org.headers)
        assert again.status_code == 404
        async with context.sessionmaker() as session:
            row = await session.scalar(select(Secret).where(Secret.name == f"webhook:{webhook_id}"))
        assert row is None

    async def test_every_change_is_audited_without_the_url_path(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        webhook_id = (await create(client, org)).json()["id"]
        path = f"/v1/webhooks/{webhook_id}"
        await client.patch(path, json={"description": "x"}, headers=org.headers)
        await client.post(f"{path}/rotate-secret", headers=org.headers)
        await client.delete(path, headers=org.headers)

        audit = await client.get("/v1/audit", params={"target_id": webhook_id}, headers=org.headers)

        events = audit.json()["items"]
        assert sorted(event["action"] for event in events) == [
            "webhook.created",
            "webhook.deleted",
            "webhook.secret_rotated",
            "webhook.updated",
        ]
        assert {event["target_name"] for event in events} == {"93.184.215.14"}
        assert "/hooks/voxflow" not in audit.text


class TestOtherOrgs:
    async def test_another_orgs_webhook_is_404_everywhere(
        self, client: httpx.AsyncClient, org: OrgHandle, other_org: OrgHandle
    ) -> None:
        webhook_id = (await create(client, org)).json()["id"]
        path = f"/v1/webhooks/{webhook_id}"

        answers = [
            await client.get(path, headers=other_org.headers),
            await client.get(f"{path}/deliveries", headers=other_org.headers),
            await client.patch(path, json={"description": "x"}, headers=other_org.headers),
            await client.post(f"{path}/rotate-secret", headers=other_org.headers),
            await client.delete(path, headers=other_org.headers),
        ]

        assert [answer.status_code for answer in answers] == [404] * 5
        listed = await client.get("/v1/webhooks", headers=other_org.headers)
        assert listed.json()["items"] == []
        assert (await client.get(path, headers=org.headers)).status_code == 200
