"""RubberDuck's plugin core: the declarative spec, pluggy hooks, discovery, registry, events.

A plugin author needs only this package's top level::

    from rubberduck_jupyter.plugins import command, hookimpl, plugin

    spec = plugin(name="hello", version="1.0", api=">=1,<2", permissions=["call_model"])

See docs/plugins.md. This package imports nothing else from rubberduck_jupyter: it sits low in
the architecture until the server wires it in.
"""

from __future__ import annotations

from .context import METHOD_PERMISSIONS, SUGGEST_MODES, CommandContext, PermissionRefused, Services
from .discovery import ENTRY_POINT_GROUP, AccessPolicy, merge_policies, negotiate
from .events import (
    AnalysisDone,
    AnswerDone,
    Event,
    EventBus,
    FileChanged,
    IndexUpdated,
    MessageStored,
    PluginStateChanged,
    on_event,
)
from .hooks import HOOK_NAMES, HookManager, hookimpl, hookspec
from .registry import CommandError, PluginRecord, PluginRegistry, PluginState
from .spec import (
    EXTENSION_POINTS,
    PERMISSIONS,
    PLUGIN_API_VERSION,
    CommandSpec,
    PluginSpec,
    PluginSpecError,
    command,
    plugin,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "EXTENSION_POINTS",
    "HOOK_NAMES",
    "METHOD_PERMISSIONS",
    "PERMISSIONS",
    "PLUGIN_API_VERSION",
    "SUGGEST_MODES",
    "AccessPolicy",
    "AnalysisDone",
    "AnswerDone",
    "CommandContext",
    "CommandError",
    "CommandSpec",
    "Event",
    "EventBus",
    "FileChanged",
    "HookManager",
    "IndexUpdated",
    "MessageStored",
    "PermissionRefused",
    "PluginRecord",
    "PluginRegistry",
    "PluginSpec",
    "PluginSpecError",
    "PluginState",
    "PluginStateChanged",
    "Services",
    "command",
    "hookimpl",
    "hookspec",
    "merge_policies",
    "negotiate",
    "on_event",
    "plugin",
]
