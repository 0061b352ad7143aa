"""Which user a request is, for RubberDuck's data.

On JupyterHub (or any server with its own identity provider) the Jupyter user's name.
On a plain single-user server with token or password login, jupyter_server makes up an
anonymous identity per browser session; every one of them is the server's owner, so
RubberDuck keys their data by the owner's name, and conversations survive a new browser
session or a restart.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

_SINGLE_USER_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)


def user_key(handler: Any, *, mode: str, owner: str) -> str:
    """`mode`: "auto", "jupyter_user" (always the Jupyter user) or "server_owner"."""
    if mode == "server_owner":
        return owner
    user = handler.current_user
    if getattr(user, "name", None) == "kernel":
        return owner  # the scoped kernel token: the server's own kernels act for its owner
    if mode == "jupyter_user":
        return str(user.username)
    provider = handler.identity_provider
    if type(provider) in _SINGLE_USER_PROVIDERS:
        return owner
    return str(user.username)
