"""PluginHost: the plugin registry wired into the server.

It owns the `PluginRegistry` and the `EventBus` (plugins/), and connects them to the rest:

- **Built-ins first.** Every built-in engine is registered as a built-in plugin named after
  it (`simple`, `analysis`, ..., `help`, `preferences`) and the static review as
  `static-review`, through the same public spec and checks as anyone's plugin; the router
  reads its engines and slash commands from the registry (`catalog()`), so an admin can
  deny one of ours by name, and a plugin's command joins `/help` and the sidebar's list.
- **Then discovery**: the `rubberduck.plugins` entry points and the plugins folder, under
  the admin's allow/deny lists.
- **Turns** call `pre_input`, `route_hint` and `post_response` (`TurnHooks`), and publish
  `MessageStored` and `AnswerDone`; **reviews** call `analysis_augment`, and a plugin's
  finding keeps its suggested replacement only if the cell still parses.
- **Hot reload**: a change in the plugins folder reloads that plugin (registry.reload:
  calls in flight finish on the old version; a failed reload keeps it).
- **State changes reach the sidebar**: every `PluginStateChanged` after start becomes a
  `plugins` frame to each open chat socket (`listen`).

Nothing here imports a handler or the app; the app builds one host and hands it around.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engines.base import Engine, Turn
from .engines.catalog import EngineCatalog
from .engines.plugin_commands import PluginCommandEngine
from .plugin_settings import PluginSettings
from .plugins import (
    PLUGIN_API_VERSION,
    AnalysisDone,
    AnswerDone,
    EventBus,
    FileChanged,
    IndexUpdated,
    MessageStored,
    PluginRegistry,
    PluginState,
    PluginStateChanged,
    plugin,
)
from .plugins.discovery import (
    ENTRY_POINT_GROUP,
    canonical_name,
    entry_point_candidates,
    folder_candidates,
)
from .plugins.events import event_handlers
from .plugins.isolation import PluginSupervisor, PluginTarget, admit_isolated
from .protocol import ChatContext, plugins_frame

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]

# The plugin names of our engines: the engine's own name (an admin denies "multi_step").
BUILTIN_VERSION = "1.0"
STATIC_REVIEW = "static-review"
# A plugin's finding: what the review UI needs, bounded so one plugin cannot flood a cell.
MAX_PLUGIN_FINDINGS = 50
MAX_FINDING_TEXT = 2_000
_SEVERITIES = ("error", "warning", "info")
# Plugin folder events are grouped: an editor's save is several events within ~100 ms.
RELOAD_DEBOUNCE_MS = 200
# A replaced worker (hot reload) is stopped this long after, so calls in flight finish on it.
RETIRE_AFTER_S = 60.0
# How often a plugins folder that does not exist yet is looked for.
FOLDER_POLL_S = 2.0


class StaticAnalyzer:
    """The built-in static review (syntax, ruff, our ast checks), as the `static-review`
    plugin's analyzer: the review handlers find it through the registry."""

    @staticmethod
    def review_cell(source: str, *, known_names: Iterable[str], above: Sequence[str]) -> Any:
        from .review.cellfix import review_cell

        return review_cell(source, known_names=known_names, above=above)

    @staticmethod
    def review_notebook(cells: Any, **kwargs: Any) -> Any:
        from .review.batch import review_notebook

        return review_notebook(cells, **kwargs)


@dataclass(frozen=True)
class EmbedderPlugin:
    """What an `embedder` plugin's module holds as `embedder`: the index_embedder kind it
    builds (`minilm`, `model2vec`, `litellm`) and the factory, called in a worker thread."""

    kind: str
    factory: Callable[[Any], Any]


def _local_embedder(config: Any) -> Any:
    from .index.embedder_config import build_embedder

    return build_embedder(config)


def _provider_embedder(config: Any) -> Any:
    from .index.embedder_config import build_embedder
    from .llm.embedder import provider_embedder

    return build_embedder(config, provider_embedder)


# Our embedders as built-in plugins: (plugin name, kind, what it is, its factory).
BUILTIN_EMBEDDERS = (
    (
        "minilm",
        "minilm",
        "all-MiniLM-L6-v2 (ONNX Runtime int8/fp32, or sentence-transformers)",
        _local_embedder,
    ),
    ("model2vec", "model2vec", "a static model distilled from MiniLM", _local_embedder),
    (
        "litellm-embedder",
        "litellm",
        "a provider's embedding API through litellm",
        _provider_embedder,
    ),
)


def _builtin_module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(f"rubberduck_jupyter.builtin.{name}")
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


class PluginHost:
    def __init__(self, settings: PluginSettings) -> None:
        self.settings = settings
        self.bus = EventBus()
        self.registry = PluginRegistry(
            policy=settings.policy,
            bus=self.bus,
            hook_timeout_s=settings.hook_timeout_s,
            command_timeout_s=settings.command_timeout_s,
            max_consecutive_failures=settings.max_consecutive_failures,
        )
        self._listeners: set[Listener] = set()
        self._command_engines: dict[tuple[str, str, int], PluginCommandEngine] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self.reloads = 0
        self.index_root = Path()  # the project root the index events name (set by the app)
        self._pending: list[PluginTarget] = []  # untrusted plugins found, not started yet
        self._workers: dict[str, PluginSupervisor] = {}  # canonical name -> its supervisor
        # Plugins' @on_event handlers subscribed to the bus: (plugin, admission order) ->
        # subscriber names.
        self._subscribed: dict[tuple[str, int], list[str]] = {}
        for name, kind, description, factory in BUILTIN_EMBEDDERS:
            self.registry.register_builtin(
                plugin(
                    name=name,
                    version=BUILTIN_VERSION,
                    api=f"=={PLUGIN_API_VERSION}",
                    provides=["embedder"],
                    description=description,
                ),
                _builtin_module(name, embedder=EmbedderPlugin(kind, factory)),
            )

    # -- loading --------------------------------------------------------------------------

    def register_builtins(self, engines: Mapping[str, Engine]) -> None:
        """Our engines and static review, each a built-in plugin through the public spec."""
        for name, engine in engines.items():
            spec = plugin(
                name=name,
                version=BUILTIN_VERSION,
                api=f"=={PLUGIN_API_VERSION}",
                provides=["engine"],
                description=engine.info.description,
            )
            self.registry.register_builtin(spec, _builtin_module(name, engines=[engine]))
        spec = plugin(
            name=STATIC_REVIEW,
            version=BUILTIN_VERSION,
            api=f"=={PLUGIN_API_VERSION}",
            provides=["analysis"],
            description="Syntax, ruff and RubberDuck's own checks on cells and files.",
        )
        self.registry.register_builtin(
            spec, _builtin_module(STATIC_REVIEW, analyzer=StaticAnalyzer())
        )

    def discover(self) -> None:
        """Admit the in-process plugins now; untrusted ones wait for `start()` (their
        workers start on the running loop), in the same order."""
        if self.settings.entry_points:
            try:
                candidates = entry_point_candidates()
                values = _entry_point_values()
            except Exception as exc:  # broken metadata on sys.path must not stop the server
                log.warning("cannot read plugin entry points: %s", exc)
                candidates, values = [], {}
            for cand in candidates:
                if self.settings.is_untrusted(cand.name):
                    self._pending.append(
                        PluginTarget.from_entry_point(cand.name, values[cand.name])
                    )
                else:
                    self.registry.admit(cand)
        for folder in self.settings.folders:
            for cand in folder_candidates(folder):
                if self.settings.is_untrusted(cand.name):
                    self._pending.append(_folder_target(cand.source))
                else:
                    self.registry.admit(cand)

    # -- engines --------------------------------------------------------------------------

    def engines(self) -> dict[str, Engine]:
        """Built-in and plugin engines, then one engine per plugin command."""
        out: dict[str, Engine] = dict(self.registry.engines())
        for command, (plugin_name, cmd) in self.registry.commands().items():
            record = self.registry.get(plugin_name)
            if record is None or record.spec is None:
                continue
            # Keyed on the record's admission order too: a reloaded plugin gets a new
            # engine bound to its new handler; the old one finishes what it runs.
            key = (plugin_name, command, record.order)
            engine = self._command_engines.get(key)
            if engine is None:
                engine = PluginCommandEngine(record.spec, cmd, self.registry.run_command)
                self._command_engines[key] = engine
            out[engine.info.name] = engine
        return out

    def catalog(self) -> EngineCatalog:
        return EngineCatalog(self.engines, lambda: self.registry.generation)

    def engine_list(self) -> list[dict[str, Any]]:
        return [engine.info.to_json() for engine in self.engines().values()]

    def embedder_factories(self) -> dict[str, Callable[[Any], Any]]:
        """index_embedder kind -> factory, from the loaded embedder plugins."""
        out: dict[str, Callable[[Any], Any]] = {}
        for record in self.registry.loaded(provides="embedder"):
            found = getattr(record.module, "embedder", None)
            if isinstance(found, EmbedderPlugin):
                out.setdefault(found.kind, found.factory)
        return out

    # -- turns (sessions.manager.TurnHooks) -----------------------------------------------

    async def pre_input(self, text: str, context: ChatContext) -> str:
        return await self.registry.hooks.pre_input(text, context.to_json())

    async def route_hint(self, text: str, context: ChatContext) -> str | None:
        return await self.registry.hooks.route_hint(text, context.to_json())

    async def answered(
        self, user: str, conversation_id: str, stored: Any, engine: str, turn: Turn
    ) -> None:
        self.bus.publish(
            MessageStored(
                user=user, conversation_id=conversation_id, message_id=stored.id, role="assistant"
            )
        )
        self.bus.publish(
            AnswerDone(
                user=user, conversation_id=conversation_id, message_id=stored.id, engine=engine
            )
        )
        await self.registry.hooks.post_response(turn.answer_text, turn.context.to_json())

    # -- the index ------------------------------------------------------------------------

    def files_changed(self, paths: list[Path], how: str) -> None:
        for path in paths:
            # The watcher reports a burst of paths, not what happened to each: a path that
            # is gone was deleted, any other was written (created or modified).
            change = "modified" if how == "saved" or path.exists() else "deleted"
            self.bus.publish(FileChanged(root=str(self.index_root), path=str(path), change=change))

    def index_updated(self, files: int, chunks: int) -> None:
        self.bus.publish(IndexUpdated(root=str(self.index_root), files=files, chunks=chunks))

    # -- reviews --------------------------------------------------------------------------

    def analyzer(self) -> StaticAnalyzer | None:
        """The static analyzer of the loaded `static-review` plugin (None: denied)."""
        for record in self.registry.loaded(provides="analysis"):
            found = getattr(record.module, "analyzer", None)
            if found is not None:
                return found  # type: ignore[no-any-return]
        return None

    async def augment(
        self, source: str, findings: list[dict[str, Any]], context: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Plugins' findings for one cell, checked: bad ones dropped, replacements that do
        not parse (or leave the cell as it was) kept as advice without the fix."""
        if not self.registry.hooks.implementations("analysis_augment"):
            return []
        raw = await self.registry.hooks.analysis_augment(source, findings, context)
        checked = [f for f in (_plugin_finding(item, source) for item in raw) if f is not None]
        if any(f.get("replacement") for f in checked):
            checked = await asyncio.to_thread(_keep_parsing_replacements, checked, source)
        return checked[:MAX_PLUGIN_FINDINGS]

    def analysis_done(self, path: str, findings: int) -> None:
        self.bus.publish(AnalysisDone(path=path, findings=findings))

    # -- the sidebar ----------------------------------------------------------------------

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(frame)` with a `plugins` frame on each state change; returns
        the function that stops it."""
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    def _sync_subscriptions(self) -> None:
        """Subscribe the loaded plugins' @on_event handlers; drop those of any other."""
        loaded = {(r.name, r.order): r for r in self.registry.loaded()}
        for key in [k for k in self._subscribed if k not in loaded]:
            for name in self._subscribed.pop(key):
                self.bus.unsubscribe(name)
        for key, record in loaded.items():
            if key in self._subscribed or record.module is None:
                continue
            names = []
            for function, handler, kinds in event_handlers(record.module):
                name = f"{record.name}:{function}"
                self.bus.unsubscribe(name)  # an earlier version's, if any
                self.bus.subscribe(handler, types=kinds, name=name)
                names.append(name)
            self._subscribed[key] = names

    async def _on_state(self, event: PluginStateChanged) -> None:
        self._sync_subscriptions()
        record = self.registry.get(event.name)
        version = record.spec.version if record is not None and record.spec else ""
        frame = plugins_frame(
            engines=self.engine_list(),
            changed={
                "name": event.name,
                "state": event.state,
                "reason": event.reason,
                "version": version,
            },
        )
        for listener in list(self._listeners):
            try:
                listener(frame)
            except Exception:  # a closed socket must not stop the others
                log.debug("plugins frame listener failed", exc_info=True)

    # -- start, reload, stop --------------------------------------------------------------

    def start(self, spawn: Callable[[str, Any], Any] | None = None) -> None:
        """On the running loop: the sidebar's subscription and the folder watcher."""
        if self._started:
            return
        self._started = True
        self.bus.subscribe(self._on_state, types=(PluginStateChanged,), name="sidebar")
        self.bus.subscribe(self._on_disabled, types=(PluginStateChanged,), name="workers")
        self._sync_subscriptions()
        if self._pending:
            self._spawn(self.load_isolated(), "plugins-isolated")
        if self.settings.reload:
            for folder in self.settings.folders:
                self._spawn(self._watch(folder), f"plugins-watch:{folder}")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def load_isolated(self) -> None:
        """Start the untrusted plugins found by `discover()` (start() does it in a task)."""
        pending, self._pending = self._pending, []
        for target in pending:
            await self.start_isolated(target)

    async def start_isolated(self, target: PluginTarget) -> Any:
        """Start an untrusted plugin's worker and admit its proxy (policy first: denied
        code never runs, not even in a worker). A plugin already loaded from the same
        source is swapped for the new worker only if it loads (hot reload)."""
        sup = PluginSupervisor(target, limits=self.settings.worker_limits)
        key = canonical_name(target.name)
        old = self._workers.get(key)
        existing = self.registry.get(target.name)
        if old is not None and existing is not None and existing.source == target.source:
            if self.registry.policy.refusal(sup.name) is None:
                await sup.start()
            record = self.registry.reload(sup.candidate())
            if sup.proxy is not None and record.module is sup.proxy:
                self._workers[key] = sup
                # The old worker finishes what it runs (a command may take its timeout).
                self._spawn(self._stop_later(old), f"plugins-retire:{key}")
            else:
                await sup.stop()
            return record
        record = await admit_isolated(self.registry, sup)
        if record.state is PluginState.LOADED:
            self._workers[key] = sup
        return record

    async def _stop_later(self, sup: PluginSupervisor) -> None:
        await asyncio.sleep(min(self.settings.command_timeout_s, RETIRE_AFTER_S))
        await sup.stop()

    async def _on_disabled(self, event: PluginStateChanged) -> None:
        """A disabled or removed isolated plugin gives its process back."""
        if event.state not in ("disabled", "skipped"):
            return
        key = canonical_name(event.name)
        sup = self._workers.get(key)
        record = self.registry.get(event.name)
        if sup is None:
            return
        if (
            record is None
            or record.module is not sup.proxy
            or record.state is not PluginState.LOADED
        ):
            del self._workers[key]
            await sup.stop()

    async def _watch(self, folder: Path) -> None:
        import watchfiles

        folder = await asyncio.to_thread(lambda: folder.expanduser().resolve())
        # The default folder need not exist: look again now and then (a stat, in a thread).
        while not await asyncio.to_thread(folder.is_dir):  # noqa: ASYNC110
            await asyncio.sleep(FOLDER_POLL_S)
        async for changes in watchfiles.awatch(
            folder, debounce=RELOAD_DEBOUNCE_MS, step=50, recursive=True
        ):
            self.reload_paths(folder, [Path(path) for _, path in changes])

    def reload_paths(self, folder: Path, paths: Iterable[Path]) -> list[str]:
        """Reload (or remove) the plugins of `folder` that `paths` belong to; returns
        their names. Also what a test or an admin's command calls directly."""
        folder = folder.resolve()
        stems: set[str] = set()
        for path in paths:
            try:
                rel = path.resolve().relative_to(folder)
            except ValueError:
                continue
            if not rel.parts or rel.parts[0].startswith(("_", ".")):
                continue
            first = rel.parts[0]
            if len(rel.parts) == 1 and not first.endswith(".py"):
                continue
            stems.add(first.removesuffix(".py"))
            if "__pycache__" in rel.parts:
                stems.discard(first.removesuffix(".py"))
        candidates = {c.name: c for c in folder_candidates(folder)}
        done: list[str] = []
        for stem in sorted(stems):
            cand = candidates.get(stem)
            if cand is not None and self.settings.is_untrusted(stem):
                self._spawn(self.start_isolated(_folder_target(cand.source)), f"reload:{stem}")
            elif cand is not None:
                self.registry.reload(cand)
            else:
                for source in (folder / f"{stem}.py", folder / stem / "__init__.py"):
                    self.registry.remove(str(source))
                    self.registry.remove(f"{source} (isolated worker)")
            self.reloads += 1
            done.append(stem)
        return done

    async def stop(self) -> None:
        workers, self._workers = list(self._workers.values()), {}
        await asyncio.gather(*(sup.stop() for sup in workers), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bus.aclose()

    # -- what admins see ------------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        return self.registry.list()

    def health(self) -> dict[str, Any]:
        rows = self.registry.health()
        return {
            "plugins": rows,
            "disabled": sorted(n for n, r in rows.items() if r.get("state") == "disabled"),
            "reloads": self.reloads,
            "workers": {name: sup.health() for name, sup in sorted(self._workers.items())},
            "events": self.bus.stats(),
        }


def _folder_target(source: str) -> PluginTarget:
    path = Path(source)
    return PluginTarget.from_path(path.parent if path.name == "__init__.py" else path)


def _entry_point_values() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _plugin_finding(item: Mapping[str, Any], source: str) -> dict[str, Any] | None:
    """One plugin finding in the review's shape, or None when it is malformed."""
    code, message, line = item.get("code"), item.get("message"), item.get("line")
    if not isinstance(code, str) or not isinstance(message, str) or not code or not message:
        return None
    n_lines = max(1, source.count("\n") + 1)
    if isinstance(line, bool) or not isinstance(line, int) or not 1 <= line <= n_lines:
        return None
    col = item.get("col", 1)
    end_line = item.get("end_line", line)
    severity = item.get("severity", "warning")
    fix = item.get("fix")
    replacement = item.get("replacement")
    return {
        "source": "plugin",
        "plugin": str(item.get("plugin", "")),
        "code": code[:32],
        "message": message[:MAX_FINDING_TEXT],
        "line": line,
        "col": col if isinstance(col, int) and not isinstance(col, bool) and col >= 1 else 1,
        "end_line": end_line
        if isinstance(end_line, int) and not isinstance(end_line, bool) and end_line >= line
        else line,
        "severity": severity if severity in _SEVERITIES else "warning",
        "fix": fix[:MAX_FINDING_TEXT] if isinstance(fix, str) else None,
        "replacement": replacement if isinstance(replacement, str) else None,
    }


def _keep_parsing_replacements(findings: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """Code we offer to apply parses: a replacement that does not is dropped (in a thread:
    a big cell takes milliseconds to parse)."""
    from .review.cells import parse_cell

    for finding in findings:
        replacement = finding.get("replacement")
        if not replacement:
            continue
        if replacement == source:
            finding["replacement"] = None
            continue
        try:
            parse_cell(replacement)
        except (SyntaxError, ValueError):
            finding["replacement"] = None
    return findings
