"""Server fixtures live in tests/server_fixtures.py, shared with the security and
reliability suites."""

from server_fixtures import *  # noqa: F403
