"""Case counts for the security and reliability suites.

A test in those suites tries many cases (a route x a credential, a planted secret x a
channel, a fuzzed frame). It records how many it tried and how many came out right through
the `cases` fixture, then asserts as usual; the run ends with one line per suite, so CI's
log says what was proven, not only that nothing failed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUITES = ("security", "reliability")


@dataclass
class Tally:
    tried: int = 0
    correct: int = 0
    tests: set[str] = field(default_factory=set)


TALLIES: dict[str, Tally] = defaultdict(Tally)


@dataclass
class Cases:
    """`cases.add(tried, correct)` or `cases.check(ok)` once per case."""

    suite: str
    test: str

    def add(self, tried: int, correct: int) -> None:
        tally = TALLIES[self.suite]
        tally.tried += tried
        tally.correct += correct
        tally.tests.add(self.test)

    def check(self, ok: bool) -> bool:
        self.add(1, int(bool(ok)))
        return ok


def suite_of(path: Path) -> str:
    """The suite a test file counts for: its folder (tests/security/...), or its name for a
    module that must live elsewhere (tests/browser/test_security_render.py needs the browser
    fixtures, yet proves a security promise)."""
    parts = path.parts
    for suite in SUITES:
        if suite in parts or suite in path.stem:
            return suite
    return "other"


@pytest.fixture
def cases(request: pytest.FixtureRequest) -> Cases:
    return Cases(suite_of(Path(str(request.node.path))), request.node.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for suite in SUITES:
        tally = TALLIES.get(suite)
        if tally is None:
            continue
        terminalreporter.write_line(
            f"{suite} suite: {tally.tried} cases tried, {tally.correct} correct "
            f"({len(tally.tests)} tests)"
        )
