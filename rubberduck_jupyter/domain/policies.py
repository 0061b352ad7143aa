"""Who may do what. Every action runs for an actor; a user reaches only their own
projects, conversations and suggestions. A refusal reads as "not found" to the caller, so
one user cannot learn whether another's conversation exists."""

from __future__ import annotations

from .models import CodeSuggestion, Conversation, Project, User


class NotPermitted(LookupError):
    """The actor may not see or touch this object; shown to clients as not found."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"No {kind} {object_id!r}.")
        self.kind = kind
        self.object_id = object_id


def may_use_project(actor: User, project: Project) -> bool:
    if project.owner == actor.name:
        return True
    return project.members is None or actor.name in project.members


def may_read_conversation(actor: User, conversation: Conversation) -> bool:
    return conversation.user == actor.name


def may_change_conversation(actor: User, conversation: Conversation) -> bool:
    return conversation.user == actor.name


def may_apply_suggestion(actor: User, suggestion: CodeSuggestion) -> bool:
    return suggestion.user == actor.name


def require_project(actor: User, project: Project) -> Project:
    if not may_use_project(actor, project):
        raise NotPermitted("project", project.id)
    return project


def require_conversation(
    actor: User, conversation: Conversation | None, conversation_id: str, *, write: bool = False
) -> Conversation:
    allowed = may_change_conversation if write else may_read_conversation
    if conversation is None or not allowed(actor, conversation):
        raise NotPermitted("conversation", conversation_id)
    return conversation


def require_suggestion(
    actor: User, suggestion: CodeSuggestion | None, suggestion_id: str
) -> CodeSuggestion:
    if suggestion is None or not may_apply_suggestion(actor, suggestion):
        raise NotPermitted("suggestion", suggestion_id)
    return suggestion
