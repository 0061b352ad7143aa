"""A Jupyter identity provider with two users, for tests of whose data a request reaches.

Each user has a token (header `Authorization: token ...` or `?token=`); the base class does
the rest as for Jupyter's own token: it sets the signed login cookie, and a cookie request
gets Jupyter's origin and XSRF checks. Any other token is nobody.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

TOKENS = {"alice": "alice-secret-token", "bob": "bob-secret-token"}


class TwoUsers(IdentityProvider):
    async def get_user_token(self, handler: Any) -> User | None:  # type: ignore[override]
        given = self.get_token(handler)
        for name, token in TOKENS.items():
            if given == token:
                return User(username=name)
        return None


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"token {TOKENS[name]}"}
