"""Which user a request is, for RubberDuck's data, and the kernel tokens that act for one.

On JupyterHub (or any server with its own identity provider) the Jupyter user's name.
On a plain single-user server with token or password login, jupyter_server makes up an
anonymous identity per browser session; every one of them is the server's owner, so
RubberDuck keys their data by the owner's name, and conversations survive a new browser
session or a restart.

A kernel token acts for the user whose request started the kernel, never for the server as
a whole: with several users (JupyterHub sharing, a custom identity provider) user B's kernel
must reach only B's data. So there is one random token per RubberDuck user, minted when that
user's first kernel starts and handed only to kernels that user starts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

_SINGLE_USER_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)


def is_single_user(provider: Any, *, mode: str) -> bool:
    """Whether every request's data is the owner's (a plain token/password server)."""
    if mode == "server_owner":
        return True
    return mode == "auto" and type(provider) in _SINGLE_USER_PROVIDERS


def user_key(handler: Any, *, mode: str, owner: str) -> str:
    """`mode`: "auto", "jupyter_user" (always the Jupyter user) or "server_owner"."""
    kernel_user = getattr(handler, "kernel_user", None)
    if kernel_user is not None:
        return str(kernel_user)  # a kernel token: the user it was minted for, already keyed
    if is_single_user(handler.identity_provider, mode=mode):
        return owner
    return str(handler.current_user.username)


def kernel_start_user(handler: Any | None, *, provider: Any, mode: str, owner: str) -> str | None:
    """Whose kernel token a kernel being started gets, or None for no token.

    `handler` is the request starting it (jupyter_server's CallContext), None outside one.
    Without a known user only a single-user server can tell whose kernel it is (the owner's).
    """
    user = None
    if handler is not None:
        try:
            user = handler.current_user
        except RuntimeError:  # jupyter_server raises when prepare never resolved a user
            user = None
    if user is not None:
        return user_key(handler, mode=mode, owner=owner)
    return owner if is_single_user(provider, mode=mode) else None


class KernelTokens:
    """One random token per RubberDuck user; looked up by a digest, confirmed in constant time.

    Tokens live in memory only: a kernel's token dies with the server that minted it, as the
    kernel does. One entry per user who started a kernel (a few bytes each).
    """

    def __init__(self) -> None:
        self._by_user: dict[str, str] = {}
        self._by_digest: dict[bytes, str] = {}

    def token_for(self, user: str) -> str:
        token = self._by_user.get(user)
        if token is None:
            token = secrets.token_urlsafe(32)
            self._by_user[user] = token
            self._by_digest[_digest(token)] = user
        return token

    def user_for(self, token: str) -> str | None:
        """The user `token` belongs to, or None."""
        if not token:
            return None
        user = self._by_digest.get(_digest(token))
        if user is None:
            return None
        # The digest lookup reveals nothing about the token; compare the token itself too.
        if not hmac.compare_digest(self._by_user[user].encode(), _raw(token)):
            return None
        return user


def _raw(token: str) -> bytes:
    # Header values arrive as latin-1 text; surrogatepass keeps any str encodable.
    return token.encode("utf-8", "surrogatepass")


def _digest(token: str) -> bytes:
    return hashlib.sha256(_raw(token)).digest()
