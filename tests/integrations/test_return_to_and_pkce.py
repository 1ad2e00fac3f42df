"""The pieces of an authorisation request: PKCE S256 and the `return_to` guard."""

from __future__ import annotations

import httpx
import pytest

from integrations.oauth_support import Person
from voxflow.integrations.pkce import new_code_verifier, s256_challenge
from voxflow.integrations.return_to import check_return_to, with_query


class TestPkce:
    def test_the_challenge_matches_rfc_7636_appendix_b(self) -> None:
        verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

        assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

    def test_verifiers_are_long_unreserved_and_new_each_time(self) -> None:
        verifiers = {new_code_verifier() for _ in range(50)}

        assert len(verifiers) == 50
        for verifier in verifiers:
            assert 43 <= len(verifier) <= 128
            assert set(verifier) <= set(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
            )


BAD_RETURN_TO = [
    "//evil.example",
    "https://evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example",  # encoded twice
    "/%25252F%25252Fevil.example",  # and more
    "/\tevil",
    "/\nevil",
    "/evil\r\nSet-Cookie: x=1",
    "/%09/evil.example",
    "/%0d%0aLocation:%20https://evil.example",
    "/\x00",
    "/%00",
    "/..//evil.example",
    "/%2e%2e//evil.example",
    "/./settings",
    "/settings/../../admin",
    "/a//b",
    "/ evil",
    "/é",
    "",
    "evil.example",
    "settings",
    "/" + "a" * 2001,
]
GOOD_RETURN_TO = [
    "/",
    "/settings/integrations",
    "/settings/integrations?tab=airtable&x=1#top",
    "/flows/wf_123/edit",
    "/search?q=a%20b",
    "/@someone",
    "/%C3%A9t%C3%A9/caf%C3%A9",
    "/" + "a" * 1999,
]


class TestReturnTo:
    @pytest.mark.parametrize("value", BAD_RETURN_TO)
    def test_anything_but_a_path_on_this_site_is_refused(self, value: str) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 (each has its own reason)
            check_return_to(value)

    @pytest.mark.parametrize("value", GOOD_RETURN_TO)
    def test_paths_on_this_site_are_kept_as_given(self, value: str) -> None:
        assert check_return_to(value) == value

    def test_the_outcome_joins_the_query_before_the_fragment(self) -> None:
        assert with_query("/s?tab=a#top", connection="con_1") == "/s?tab=a&connection=con_1#top"
        assert with_query("/s", error="x y") == "/s?error=x+y"

    @pytest.mark.parametrize("value", BAD_RETURN_TO[:12] + BAD_RETURN_TO[20:23])
    async def test_connect_answers_422_pointing_at_return_to(
        self, web: httpx.AsyncClient, admin: Person, value: str
    ) -> None:
        response = await web.post(
            "/v1/integrations/airtable/connect",
            json={"name": "CRM", "return_to": value},
            headers=admin.headers,
        )

        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [error["pointer"] for error in response.json()["errors"]] == ["/return_to"]
