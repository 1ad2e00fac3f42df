"""Published versions: publish, immutability, listing, diff, restore, concurrent publishes."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest

from support import OrgHandle, create_workflow, publish, replace_draft, workflow_document
from voxflow.dsl import dump_canonical, parse_document

PROBLEM = "application/problem+json"


def canonical_sha256(document: dict) -> str:
    """SHA-256 of the canonical JSON text: sorted keys, no spaces, UTF-8."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


async def version(client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, number: int) -> dict:
    response = await client.get(
        f"/v1/workflows/{workflow_id}/versions/{number}", headers=org.headers
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def version_numbers(client: httpx.AsyncClient, org: OrgHandle, workflow_id: str) -> list[int]:
    response = await client.get(f"/v1/workflows/{workflow_id}/versions", headers=org.headers)
    return [item["number"] for item in response.json()["items"]]


class TestPublish:
    async def test_the_first_publish_is_version_1_hashed_over_the_canonical_document(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        document = workflow_document()
        workflow_id = await create_workflow(client, org, document)

        response = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=org.headers)

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["number"] == 1
        assert response.headers["location"] == f"/v1/workflows/{workflow_id}/versions/1"
        expected = hashlib.sha256(dump_canonical(parse_document(document)).encode()).hexdigest()
        assert body["sha256"] == expected
        stored = await version(client, org, workflow_id, 1)
        assert canonical_sha256(stored["document"]) == expected
        workflow = await client.get(f"/v1/workflows/{workflow_id}", headers=org.headers)
        assert workflow.json()["latest_version"] == 1

    async def test_an_unchanged_draft_has_nothing_to_publish(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)

        again = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=org.headers)

        assert again.status_code == 409
        assert again.headers["content-type"] == PROBLEM
        assert "nothing to publish" in again.json()["detail"].lower()
        assert await version_numbers(client, org, workflow_id) == [1]

    async def test_a_changed_draft_becomes_version_2(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)
        await replace_draft(client, org, workflow_id, workflow_document(greeting="Open till 11."))

        assert await publish(client, org, workflow_id) == 2
        assert await version_numbers(client, org, workflow_id) == [1, 2]

    async def test_a_draft_with_structural_errors_is_refused_with_pointers(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        document = workflow_document()
        document["nodes"][0]["next"] = "nowhere"
        workflow_id = await create_workflow(client, org, document)

        response = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=org.headers)

        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert [e["pointer"] for e in response.json()["errors"]] == ["/nodes/0/next"]
        assert await version_numbers(client, org, workflow_id) == []

    async def test_concurrent_publishes_never_duplicate_a_number(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)
        await replace_draft(client, org, workflow_id, workflow_document(greeting="Changed."))

        responses = await asyncio.gather(
            *(
                client.post(f"/v1/workflows/{workflow_id}/publish", headers=org.headers)
                for _ in range(2)
            )
        )

        statuses = sorted(r.status_code for r in responses)
        assert statuses in ([201, 409], [201, 201]), [r.text for r in responses]
        numbers = await version_numbers(client, org, workflow_id)
        assert numbers == list(range(1, len(numbers) + 1))
        assert sorted(r.json()["number"] for r in responses if r.status_code == 201) == numbers[1:]


class TestVersions:
    async def test_a_version_never_changes_when_the_draft_does(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)
        before = await version(client, org, workflow_id, 1)

        await replace_draft(client, org, workflow_id, workflow_document("Renamed", "Closed today."))

        after = await version(client, org, workflow_id, 1)
        assert after == before
        assert after["document"]["name"] == "Opening hours"

    async def test_a_version_is_served_as_immutable(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)

        response = await client.get(f"/v1/workflows/{workflow_id}/versions/1", headers=org.headers)

        assert response.headers["etag"] == f'"{response.json()["sha256"]}"'
        assert "immutable" in response.headers["cache-control"]

    async def test_the_list_is_cursor_paginated(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        for n in range(3):
            await replace_draft(client, org, workflow_id, workflow_document(greeting=f"take {n}"))
            await publish(client, org, workflow_id)
        url = f"/v1/workflows/{workflow_id}/versions"

        first = (await client.get(url, params={"limit": 2}, headers=org.headers)).json()
        second = (
            await client.get(
                url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=org.headers
            )
        ).json()

        assert [v["number"] for v in first["items"]] == [1, 2]
        assert [v["number"] for v in second["items"]] == [3]
        assert second["next_cursor"] is None

    @pytest.mark.parametrize("cursor", ["abc", "\u00b2", "99999999999999999999"])
    async def test_a_foreign_cursor_is_a_400(
        self, client: httpx.AsyncClient, org: OrgHandle, cursor: str
    ) -> None:
        workflow_id = await create_workflow(client, org)

        response = await client.get(
            f"/v1/workflows/{workflow_id}/versions", params={"cursor": cursor}, headers=org.headers
        )

        assert response.status_code == 400
        assert response.json()["errors"][0]["parameter"] == "cursor"

    async def test_an_unknown_version_is_a_404(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)

        response = await client.get(f"/v1/workflows/{workflow_id}/versions/2", headers=org.headers)

        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/not-found"


class TestDiff:
    async def test_lists_nodes_added_removed_and_changed_with_pointers(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        v1 = workflow_document()
        promo = {"id": "promo", "type": "say", "text": "Try our pizza!", "next": "bye"}
        v1["nodes"].append(promo)
        workflow_id = await create_workflow(client, org, v1)
        await publish(client, org, workflow_id)
        v2 = workflow_document(greeting="Open till midnight.")
        survey = {"id": "survey", "type": "end", "text": "Rate us!", "outcome": "completed"}
        v2["nodes"].append(survey)
        await replace_draft(client, org, workflow_id, v2)
        await publish(client, org, workflow_id)

        response = await client.get(
            f"/v1/workflows/{workflow_id}/versions/1/diff/2", headers=org.headers
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["from_version"], body["to_version"]) == (1, 2)
        changes = {(c["op"], c["pointer"]): c for c in body["changes"]}
        assert set(changes) == {
            ("changed", "/nodes/0/text"),
            ("added", "/nodes/2"),
            ("removed", "/nodes/2"),
        }
        changed = changes["changed", "/nodes/0/text"]
        assert (changed["node_id"], changed["old"], changed["new"]) == (
            "greet",
            "We're open 5 to 11 pm.",
            "Open till midnight.",
        )
        assert changes["added", "/nodes/2"]["node_id"] == "survey"
        assert changes["added", "/nodes/2"]["new"] == survey
        assert changes["removed", "/nodes/2"]["node_id"] == "promo"
        assert changes["removed", "/nodes/2"]["old"] == promo

    async def test_a_version_against_itself_has_no_changes(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)

        response = await client.get(
            f"/v1/workflows/{workflow_id}/versions/1/diff/1", headers=org.headers
        )

        assert response.json()["changes"] == []

    async def test_an_unknown_side_is_a_404(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)

        response = await client.get(
            f"/v1/workflows/{workflow_id}/versions/1/diff/5", headers=org.headers
        )

        assert response.status_code == 404


class TestRestore:
    @pytest.fixture
    async def two_versions(self, client: httpx.AsyncClient, org: OrgHandle) -> str:
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)
        await replace_draft(client, org, workflow_id, workflow_document("Second", "Version two."))
        await publish(client, org, workflow_id)
        return workflow_id

    async def test_copies_the_version_into_the_draft_without_publishing(
        self, client: httpx.AsyncClient, org: OrgHandle, two_versions: str
    ) -> None:
        url = f"/v1/workflows/{two_versions}"
        etag = (await client.get(url, headers=org.headers)).headers["etag"]

        response = await client.post(
            f"{url}/versions/1/restore", headers={**org.headers, "If-Match": etag}
        )

        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'"{int(etag.strip(chr(34))) + 1}"'
        draft = await client.get(url, headers=org.headers)
        assert draft.headers["etag"] == response.headers["etag"]
        v1 = await version(client, org, two_versions, 1)
        assert draft.json()["draft"] == v1["document"]
        assert draft.json()["name"] == "Opening hours"
        assert draft.json()["latest_version"] == 2
        assert await version_numbers(client, org, two_versions) == [1, 2]

    async def test_publishing_a_restored_draft_makes_a_new_version_with_the_old_content(
        self, client: httpx.AsyncClient, org: OrgHandle, two_versions: str
    ) -> None:
        restored = await client.post(
            f"/v1/workflows/{two_versions}/versions/1/restore", headers=org.headers
        )
        assert restored.status_code == 200

        assert await publish(client, org, two_versions) == 3
        v1, v3 = (
            await version(client, org, two_versions, 1),
            await version(client, org, two_versions, 3),
        )
        assert v3["sha256"] == v1["sha256"]

    async def test_a_stale_if_match_is_412(
        self, client: httpx.AsyncClient, org: OrgHandle, two_versions: str
    ) -> None:
        url = f"/v1/workflows/{two_versions}"
        before = await client.get(url, headers=org.headers)

        response = await client.post(
            f"{url}/versions/1/restore", headers={**org.headers, "If-Match": '"1"'}
        )

        assert response.status_code == 412
        assert response.headers["etag"] == before.headers["etag"]
        after = await client.get(url, headers=org.headers)
        assert after.json()["draft"] == before.json()["draft"]

    async def test_an_unknown_version_is_a_404(
        self, client: httpx.AsyncClient, org: OrgHandle, two_versions: str
    ) -> None:
        response = await client.post(
            f"/v1/workflows/{two_versions}/versions/9/restore", headers=org.headers
        )

        assert response.status_code == 404
