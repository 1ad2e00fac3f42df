from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from voxflow.core.deps import ContextDep, PageDep, SessionDep
from voxflow.core.errors import problem_responses
from voxflow.core.pagination import Page, build_page
from voxflow.core.routing import ApiRoute
from voxflow.orgs.auth import AdminDep, MemberDep
from voxflow.vault import service
from voxflow.vault.repository import SecretRepository
from voxflow.vault.schemas import SECRET_NAME_PATTERN, SecretCreate, SecretOut, SecretUpdate
from voxflow.vault.vault import get_vault

router = APIRouter(prefix="/v1/secrets", tags=["secrets"], route_class=ApiRoute)
SecretName = Annotated[
    str, Path(pattern=SECRET_NAME_PATTERN, description="The secret's name, e.g. `CRM_API_KEY`")
]
READ_ERRORS = problem_responses(401, 403, 404, 429)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=SecretOut, responses=WRITE_ERRORS
)
async def create_secret(
    body: SecretCreate, auth: AdminDep, session: SessionDep, context: ContextDep
) -> SecretOut:
    """Store a value workflows read as `{{ secrets.NAME }}` in tool arguments.

    Encrypted before it is stored; no endpoint ever returns it.
    """
    vault = await get_vault(context)
    return service.to_out(await service.create_secret(session, vault, auth, body))


@router.get("", response_model=Page[SecretOut], responses=READ_ERRORS)
async def list_secrets(auth: MemberDep, session: SessionDep, page: PageDep) -> Page[SecretOut]:
    """Names, descriptions and when each was last used, in name order; never values."""
    rows = await SecretRepository(session).list(
        auth.org_id, after=page.cursor, limit=page.limit + 1
    )
    return build_page(rows, page.limit, service.to_out, lambda secret: secret.name)


@router.get("/{name}", response_model=SecretOut, responses=READ_ERRORS)
async def get_secret(name: SecretName, auth: MemberDep, session: SessionDep) -> SecretOut:
    return service.to_out(await service.get_secret(session, auth, name))


@router.put("/{name}", response_model=SecretOut, responses=WRITE_ERRORS)
async def replace_secret(
    name: SecretName, body: SecretUpdate, auth: AdminDep, session: SessionDep, context: ContextDep
) -> SecretOut:
    """Give the secret a new value (calls started afterwards read it)."""
    vault = await get_vault(context)
    return service.to_out(await service.replace_secret(session, vault, auth, name, body))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=READ_ERRORS)
async def delete_secret(name: SecretName, auth: AdminDep, session: SessionDep) -> None:
    """Erase the secret; workflows reading it fail their tool call (its `on_error` runs)."""
    await service.delete_secret(session, auth, name)
