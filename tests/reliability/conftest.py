"""The server fixtures of tests/server, for this suite's tests against a real server."""

from server_fixtures import *  # noqa: F403
