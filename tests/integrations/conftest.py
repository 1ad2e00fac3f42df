"""Fixtures of the OAuth tests; the helpers they use are in `oauth_support`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx
from fastapi import FastAPI

from integrations.oauth_support import OAUTH_SETTINGS, HTTPCore2Mocker, Person, signed_in
from support import client_for, configured_app, new_org
from voxflow.core.context import AppContext


@pytest.fixture(scope="module")
async def oauth_app(database_url: str) -> AsyncIterator[FastAPI]:
    async with configured_app(database_url, **OAUTH_SETTINGS) as application:
        yield application


@pytest.fixture
def oauth_context(oauth_app: FastAPI) -> AppContext:
    context: AppContext = oauth_app.state.context
    return context


@pytest.fixture
async def web(oauth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(oauth_app, host=f"10.1.{uuid.uuid4().int % 250}.1") as client:
        yield client


@pytest.fixture
def network() -> Iterator[respx.MockRouter]:
    """The providers' endpoints; anything else a test did not declare fails loudly."""
    with respx.mock(using=HTTPCore2Mocker.name, assert_all_called=False) as router:
        yield router


@pytest.fixture(scope="module")
async def admin(oauth_app: FastAPI) -> Person:
    """An admin of an org the module's tests share: signing in costs two argon2 hashes, so
    tests use unique connection names instead of an org each."""
    context: AppContext = oauth_app.state.context
    async with client_for(oauth_app, host="10.2.0.1") as client:
        return await signed_in(context, client, await new_org(context))
