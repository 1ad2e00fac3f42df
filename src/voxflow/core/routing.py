"""The route class every router uses: refuses bodies in media types the route does not take.

A route accepts what its OpenAPI request body documents (JSON by default), so the
documentation and the 415 check can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from voxflow.core.errors import UnsupportedMediaType

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class ApiRoute(APIRoute):
    def accepted_media_types(self) -> frozenset[str]:
        documented: Any = (self.openapi_extra or {}).get("requestBody", {}).get("content")
        if documented:
            return frozenset(documented)
        return frozenset({"application/json"}) if self.body_field is not None else frozenset()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        accepted = self.accepted_media_types()
        if not accepted:
            return handler

        async def checked(request: Request) -> Response:
            if request.method in _BODY_METHODS and _has_body(request):
                media_type = request.headers.get("content-type", "application/json")
                media_type = media_type.split(";", 1)[0].strip().lower()
                if media_type not in accepted and not (
                    media_type.endswith("+json") and "application/json" in accepted
                ):
                    raise UnsupportedMediaType(
                        f"Send the body as {' or '.join(sorted(accepted))} "
                        f"(Content-Type header), not {media_type}."
                    )
            return await handler(request)

        return checked


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers
