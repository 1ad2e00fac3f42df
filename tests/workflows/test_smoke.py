import httpx

from support import OrgHandle


async def test_create_and_read_a_workflow_from_yaml(
    client: httpx.AsyncClient, org: OrgHandle, luigis_yaml: bytes
) -> None:
    created = await client.post(
        "/v1/workflows",
        content=luigis_yaml,
        headers={**org.headers, "Content-Type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    got = await client.get(f"/v1/workflows/{created.json()['id']}", headers=org.headers)
    assert got.status_code == 200
    assert got.headers["etag"] == '"1"'
    assert got.json()["draft"]["start"] == "greet"
