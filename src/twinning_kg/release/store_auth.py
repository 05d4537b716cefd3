"""Credentials for a remote store's write endpoint, in the scheme the store asks for.

Stores protect their Graph Store endpoint differently: Fuseki with HTTP Basic, Virtuoso's
`/sparql-graph-crud-auth` with HTTP Digest only. Rather than make the user know which,
`ChallengeAuth` sends the first request without credentials and answers the store's
401 challenge (`WWW-Authenticate`, RFC 9110 §11.6.1) with the scheme it names, Digest
preferred over Basic (Basic sends the password itself; use it over https only). Later
requests reuse the scheme, so only the first upload is sent twice.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx


class ChallengeAuth(httpx.Auth):
    """HTTP Basic or Digest, whichever the store's 401 challenge names."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._digest = httpx.DigestAuth(user, password)
        self._basic = httpx.BasicAuth(user, password)
        self._chosen: httpx.Auth | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._chosen is not None:
            yield from self._chosen.auth_flow(request)
            return
        response = yield request
        if response.status_code != 401:
            return
        schemes = {c.split(" ", 1)[0].strip().lower() for c in response.headers.get_list("www-authenticate")}
        if "digest" in schemes:
            self._chosen = self._digest
            flow = self._digest.auth_flow(request)
            next(flow)  # the unauthenticated request, already answered by this challenge
            response = yield flow.send(response)
        elif "basic" in schemes:
            self._chosen = self._basic
            yield from self._basic.auth_flow(request)
