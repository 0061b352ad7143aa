"""The router: slash commands and the client's choice win, fast rules next, the model only
when the rules are unsure; every decision says why."""

from __future__ import annotations

import pytest
from engine_harness import Harness, frames_of

from rubberduck_jupyter.engines.router import ConversationRouter, parse_classification
from rubberduck_jupyter.protocol import ChatContext

ENGINES = {
    "simple",
    "complex",
    "analysis",
    "generation",
    "problem_solver",
    "multi_step",
    "help",
    "preferences",
}
TRACEBACK = 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: "a"'


@pytest.mark.parametrize(
    ("text", "context", "has_task", "engine", "reason_part"),
    [
        ("/review", ChatContext(), False, "analysis", "/review command"),
        ("/fix please", ChatContext(), False, "problem_solver", "/fix command"),
        ("/generate a loader", ChatContext(), False, "generation", "/generate command"),
        ("/plan load; clean; fit", ChatContext(), False, "multi_step", "/plan command"),
        ("/bogus do it", ChatContext(), False, "help", "unknown command /bogus"),
        (f"what does this mean?\n{TRACEBACK}", ChatContext(), False, "problem_solver", "traceback"),
        ("why does it fail?", ChatContext(error="ValueError: x"), False, "problem_solver", "error"),
        ("next", ChatContext(), True, "multi_step", "running task"),
        ("next", ChatContext(), False, "simple", "direct question"),
        ("can you review my feature pipeline?", ChatContext(), False, "analysis", "review"),
        ("write a function that parses dates", ChatContext(), False, "generation", "new code"),
        ("how is a dict ordered?", ChatContext(), False, "simple", "direct question"),
        (
            "what are the trade-offs of storing this in parquet vs a database and how "
            "should the system for ingestion look?",
            ChatContext(),
            False,
            "complex",
            "design",
        ),
    ],
)
def test_rules_and_commands(
    text: str, context: ChatContext, has_task: bool, engine: str, reason_part: str
) -> None:
    router = ConversationRouter(ENGINES)
    route = router.forced(text, None) or router.by_rules(text, context, has_task=has_task)
    assert route.engine == engine
    assert reason_part in route.reason


def test_command_is_removed_from_the_text() -> None:
    route = ConversationRouter(ENGINES).forced("/generate a loader for csv files", None)
    assert route is not None and route.command == "generate"
    assert route.text == "a loader for csv files"


def test_client_choice_wins_and_unknown_engine_goes_to_help() -> None:
    router = ConversationRouter(ENGINES)
    route = router.forced("fix this traceback", "analysis")
    assert route is not None and (route.engine, route.forced) == ("analysis", True)
    unknown = router.forced("hi", "nope")
    assert unknown is not None and unknown.engine == "help"


async def test_the_model_decides_when_the_rules_are_unsure() -> None:
    router = ConversationRouter(ENGINES)
    asked: list[str] = []

    async def classify(text: str, _ctx: ChatContext) -> tuple[str, str]:
        asked.append(text)
        return "complex", "needs a plan"

    vague = "x " * 300  # long, no keyword: the rules guess "simple" with low confidence
    route = await router.route(vague, ChatContext(), classify=classify)
    assert asked == [vague]
    assert (route.engine, route.reason) == ("complex", "model: needs a plan")
    sure = await router.route("/review", ChatContext(), classify=classify)
    assert sure.engine == "analysis" and len(asked) == 1


async def test_an_unusable_classification_falls_back_to_the_rules() -> None:
    router = ConversationRouter(ENGINES)

    async def classify(_text: str, _ctx: ChatContext) -> None:
        return None

    route = await router.route("x " * 300, ChatContext(), classify=classify)
    assert route.engine == "simple"
    assert "the model could not decide" in route.reason


def test_parse_classification_reads_json_inside_prose() -> None:
    assert parse_classification('Sure: {"mode": "Analysis", "reason": "a review"}') == (
        "analysis",
        "a review",
    )
    assert parse_classification("analysis") is None
    assert parse_classification('{"reason": "x"}') is None


async def test_classification_goes_to_the_model_through_the_server_path(harness: Harness) -> None:
    harness.fake.set_replies(
        ['{"mode": "generation", "reason": "wants code"}', "```python\nx = 1\n```"]
    )
    frames = await harness.chat("lorem ipsum " * 40)
    route = frames_of(frames, "route")[0]
    assert route["engine"] == "generation"
    assert route["reason"] == "model: wants code"
    classify_prompt = harness.prompts()[0]
    assert "Pick the assistant mode" in classify_prompt[0]["content"]
