"""The router sends a change or build that spans cells to the agent (when it is
offered), and leaves one-cell fixes, questions and reviews where they went before."""

from __future__ import annotations

import pytest
from engine_harness import Harness, frames_of

from rubberduck_jupyter.engines.router import ConversationRouter
from rubberduck_jupyter.protocol import ChatContext

WITH_AGENT = {"simple", "analysis", "generation", "problem_solver", "multi_step", "agent"}


@pytest.mark.parametrize(
    ("text", "engine"),
    [
        ("rename df to orders across all cells", "agent"),
        ("refactor the plotting code throughout the notebook", "agent"),
        ("add type hints to every cell", "agent"),
        ("build a cleaning step and update several cells to use it", "agent"),
        ("what is in every cell?", "simple"),  # a question, no change
        ("rename df in this cell", "simple"),  # one cell
        ("can you review my feature pipeline?", "analysis"),
        ("write a function that parses dates", "generation"),
    ],
)
def test_changes_across_cells_go_to_the_agent(text: str, engine: str) -> None:
    route = ConversationRouter(WITH_AGENT).by_rules(text, ChatContext(), has_task=False)
    assert route.engine == engine, route.reason


def test_without_the_agent_the_rule_stays_quiet() -> None:
    router = ConversationRouter(WITH_AGENT - {"agent"})
    route = router.by_rules("rename df to orders across all cells", ChatContext(), has_task=False)
    assert route.engine != "agent"


async def test_the_server_routes_a_cross_cell_change_to_the_agent(harness: Harness) -> None:
    harness.fake.set_replies(["Nothing to change yet."])
    frames = await harness.chat("rename df to orders across all cells")
    [route] = frames_of(frames, "route")
    assert route["engine"] == "agent" and route["reason"] == "asks to change or build across cells"
    assert harness.fake.requests[0]["tools"], "the agent offered its tools"
    assert frames[-1]["type"] == "done"
