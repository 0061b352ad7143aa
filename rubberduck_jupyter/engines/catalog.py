"""EngineCatalog: the engines a server offers and the slash commands that pick them.

Read from a source that can change while the server runs (the plugin registry: a plugin
loaded, reloaded or disabled), and cached on the source's generation number, so a turn
pays one integer comparison unless something changed. The slash commands come from each
engine's `info.commands`, so a plugin's engine or command joins the router and `/help`
without a list to edit here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from .base import Engine, EngineInfo


class EngineCatalog:
    def __init__(
        self,
        source: Callable[[], Mapping[str, Engine]],
        generation: Callable[[], int] = lambda: 0,
    ) -> None:
        self._source = source
        self._generation = generation
        self._seen: int | None = None
        self._engines: dict[str, Engine] = {}
        self._commands: dict[str, str] = {}

    @classmethod
    def fixed(cls, engines: Mapping[str, Engine]) -> EngineCatalog:
        snapshot = dict(engines)
        return cls(lambda: snapshot)

    def _fresh(self) -> dict[str, Engine]:
        generation = self._generation()
        if generation != self._seen:
            engines = dict(self._source())
            commands: dict[str, str] = {}
            for name, engine in engines.items():
                for command in engine.info.commands:
                    # The first engine to claim a command keeps it (the registry already
                    # refuses a second owner; this guards a hand-built mapping).
                    commands.setdefault(command.removeprefix("/"), name)
            self._engines, self._commands, self._seen = engines, commands, generation
        return self._engines

    def get(self, name: str) -> Engine | None:
        return self._fresh().get(name)

    def __getitem__(self, name: str) -> Engine:
        return self._fresh()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._fresh()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._fresh()))

    def __len__(self) -> int:
        return len(self._fresh())

    def names(self) -> set[str]:
        return set(self._fresh())

    def values(self) -> list[Engine]:
        return list(self._fresh().values())

    def infos(self) -> list[EngineInfo]:
        return [engine.info for engine in self._fresh().values()]

    def commands(self) -> dict[str, str]:
        """Slash command without the slash -> engine name."""
        self._fresh()
        return dict(self._commands)
