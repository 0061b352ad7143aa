"""REST for conversations, preferences and suggestions. Thin: parse, call the session
layer or a domain action for the current user, map refusals to 404 and conflicts to 409.

Resources: ``rubberduck:conversations``, ``rubberduck:preferences``,
``rubberduck:suggestions`` and ``rubberduck:chat`` (engines), so an authorizer (and the
kernel token's scope) can tell reading history from deleting it."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..context.memory import display_order
from ..domain.actions import ActionError, SuggestionConflict, TargetMissing, apply_suggestion
from ..domain.models import SuggestionStatus, User
from ..domain.policies import NotPermitted, require_conversation, require_suggestion
from ..domain.preferences import PreferenceError
from ..protocol import ErrorCode
from ..sessions.export import to_markdown, to_notebook
from .base import RubberDuckAPIHandler, RubberDuckError

MAX_TITLE = 200


class _Base(RubberDuckAPIHandler):
    auth_resource = "rubberduck:conversations"

    @property
    def actor(self) -> User:
        return User(self.rubberduck.user_for(self))

    @property
    def store(self) -> Any:
        return self.rubberduck.conversations

    async def conversation(self, conversation_id: str, *, write: bool = False) -> Any:
        found = await self.store.get_conversation(conversation_id)
        try:
            return require_conversation(self.actor, found, conversation_id, write=write)
        except NotPermitted as exc:
            raise RubberDuckError(404, ErrorCode.NOT_FOUND, str(exc)) from None


class ConversationsHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish({"conversations": await self.store.list_conversations(self.actor.name)})


class ConversationHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, conversation_id: str) -> None:
        conversation = await self.conversation(conversation_id)
        # In the order to show them: the client draws them as they come.
        messages = display_order(await self.store.messages(conversation_id))
        suggestions = await self.store.suggestions(conversation_id)
        self.finish(
            {
                "conversation": conversation.to_json(),
                "messages": [m.to_json() for m in messages],
                "suggestions": [s.to_json() for s in suggestions],
            }
        )

    @web.authenticated
    @authorized
    async def patch(self, conversation_id: str) -> None:
        title = self.json_body().get("title")
        conversation = await self.conversation(conversation_id, write=True)
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
            raise RubberDuckError(
                400, ErrorCode.BAD_FRAME, f"'title' must be 1 to {MAX_TITLE} characters."
            )
        updated = conversation.with_changes(title=" ".join(title.split()))
        await self.store.update_conversation(updated)
        self.finish({"conversation": updated.to_json()})

    @web.authenticated
    @authorized
    async def delete(self, conversation_id: str) -> None:
        await self.conversation(conversation_id, write=True)
        await self.store.delete_conversation(conversation_id)
        self.set_status(204)
        self.finish()


class ConversationExportHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, conversation_id: str) -> None:
        conversation = await self.conversation(conversation_id)
        fmt = self.get_query_argument("format", "markdown")
        messages = await self.store.messages(conversation_id)
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in conversation.title)[:60]
        if fmt in ("markdown", "md"):
            render, kind, ext = to_markdown, "text/markdown", "md"
        elif fmt == "ipynb":
            render, kind, ext = to_notebook, "application/x-ipynb+json", "ipynb"
        else:
            raise RubberDuckError(400, ErrorCode.BAD_QUERY, "format must be 'markdown' or 'ipynb'")
        # nbformat's schema validation of a long conversation is worth keeping off the loop.
        body = await asyncio.to_thread(render, conversation, messages)
        self.set_header("Content-Type", f"{kind}; charset=utf-8")
        self.set_header(
            "Content-Disposition", f'attachment; filename="{safe or "conversation"}.{ext}"'
        )
        self.finish(body)


class PreferencesHandler(_Base):
    auth_resource = "rubberduck:preferences"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        prefs = await self.rubberduck.sessions.preferences.load(self.actor)
        self.finish(prefs.to_json())

    @web.authenticated
    @authorized
    async def put(self) -> None:
        # The same PreferenceBook the turns read and `/prefs` writes, so they cannot drift.
        book = self.rubberduck.sessions.preferences
        current = await book.load(self.actor)
        try:
            updated = current.updated(self.json_body())
        except PreferenceError as exc:
            raise RubberDuckError(400, ErrorCode.BAD_FRAME, str(exc)) from None
        await book.save(self.actor, updated)
        self.finish(updated.to_json())


class SuggestionHandler(_Base):
    auth_resource = "rubberduck:suggestions"

    @web.authenticated
    @authorized
    async def get(self, suggestion_id: str) -> None:
        found = await self.store.get_suggestion(suggestion_id)
        try:
            suggestion = require_suggestion(self.actor, found, suggestion_id)
        except NotPermitted as exc:
            raise RubberDuckError(404, ErrorCode.NOT_FOUND, str(exc)) from None
        self.finish(suggestion.to_json())


class SuggestionActionHandler(_Base):
    """POST .../apply {"client_target_hash"?}; POST .../reject {"reverted"?}."""

    auth_resource = "rubberduck:suggestions"

    @web.authenticated
    @authorized
    async def post(self, suggestion_id: str, action: str) -> None:
        found = await self.store.get_suggestion(suggestion_id)
        try:
            if action == "reject":
                suggestion = require_suggestion(self.actor, found, suggestion_id)
                # {"reverted": true}: the client put back an applied change itself (Undo in
                # the open notebook), so the record follows; the server undoes nothing.
                reverted = self.json_body().get("reverted") is True
                allowed = (SuggestionStatus.PROPOSED,) + (
                    (SuggestionStatus.APPLIED,) if reverted else ()
                )
                if suggestion.status not in allowed:
                    raise ActionError(f"This suggestion was already {suggestion.status}.")
                await self.store.set_suggestion_status(suggestion_id, SuggestionStatus.REJECTED)
            else:
                client_hash = self.json_body().get("client_target_hash")
                if client_hash is not None and not isinstance(client_hash, str):
                    raise ActionError("'client_target_hash' must be a string")
                await apply_suggestion(
                    self.actor,
                    found,
                    suggestion_id,
                    self.rubberduck.sessions.files,
                    client_target_hash=client_hash,
                )
                await self.store.set_suggestion_status(suggestion_id, SuggestionStatus.APPLIED)
        except NotPermitted as exc:
            raise RubberDuckError(404, ErrorCode.NOT_FOUND, str(exc)) from None
        except SuggestionConflict as exc:
            raise RubberDuckError(409, ErrorCode.CONFLICT, str(exc)) from None
        except TargetMissing as exc:
            raise RubberDuckError(404, ErrorCode.NOT_FOUND, str(exc)) from None
        except ActionError as exc:
            raise RubberDuckError(400, ErrorCode.BAD_REQUEST, str(exc)) from None
        updated = await self.store.get_suggestion(suggestion_id)
        self.finish(updated.to_json())


class EnginesHandler(_Base):
    auth_resource = "rubberduck:chat"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..engines.registry import engine_list

        self.finish({"engines": engine_list(self.rubberduck.sessions.engines)})
