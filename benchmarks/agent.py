"""What the agent adds to each tool call on top of the model's own latency.

    python benchmarks/agent.py [--rounds 30]

1. Per tool call, on a 50-line cell (replace_cell of a notebook on disk), in this process:
   schema work per model call (the registry's schemas serialized for the estimate),
   dispatch (argument JSON, schema check, the notebook read through ProjectFiles, the
   suggestion built and stored in a real SQLite store) without the review gate (syntax
   only) and with it (syntax + ruff). Baseline, same process, interleaved: one model call
   through LLMService that streams that same tool call from the fake provider (a separate
   process on 127.0.0.1): the model's own latency, as fast as a model can be.
2. A 10-step scripted task end to end (9 tool calls, then the answer) through the
   SessionManager and the agent engine, against the same 10 replies streamed through
   LLMService alone; the difference per tool call is RubberDuck's overhead, all in.
3. The same with two approved runs among the 9 calls (run_cell of the cell just replaced,
   and of the cell just inserted): the client (the turn's emit here) answers each
   approval at once with "allow" and a run_result, so what is measured is the approval
   round trip inside the server (frame, broker, pending edits laid over the notebook),
   not a kernel.
Medians of interleaved rounds; the 1-minute load average is printed with each result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import nbformat
from index_common import machine
from llm_overhead import start_fake

from rubberduck_jupyter.domain.actions import ProjectFiles
from rubberduck_jupyter.domain.models import (
    CodeSuggestion,
    Conversation,
    Project,
    SuggestionTarget,
    new_id,
)
from rubberduck_jupyter.engines.agent import AgentConversation
from rubberduck_jupyter.engines.registry import build_engines
from rubberduck_jupyter.llm.client import ToolCall
from rubberduck_jupyter.llm.config import build_models_config
from rubberduck_jupyter.llm.service import LLMService, estimate_tokens
from rubberduck_jupyter.protocol import (
    AgentAbilities,
    ApproveRequest,
    ChatContext,
    ChatRequest,
    RunOutput,
    RunResultRequest,
)
from rubberduck_jupyter.sessions.approvals import ApprovalBroker
from rubberduck_jupyter.sessions.manager import SessionManager
from rubberduck_jupyter.sessions.preferences import PreferenceBook
from rubberduck_jupyter.sessions.store import AsyncConversationStore, ConversationStore
from rubberduck_jupyter.tools.base import ToolContext
from rubberduck_jupyter.tools.dispatch import Dispatcher
from rubberduck_jupyter.tools.registry import default_tools

ASK = [{"role": "user", "content": "Tidy cell 2 of the notebook."}]


def cell_50_lines(variant: int) -> str:
    lines = ["import math", ""]
    for n in range(16):
        lines += [f"def step_{n}(x):", f"    return math.sqrt(x + {n + variant})", ""]
    return "\n".join(lines[:50])


def make_project(folder: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Bench"),
        nbformat.v4.new_code_cell(cell_50_lines(0)),
    ]
    nbformat.write(nb, str(folder / "bench.ipynb"))


def load() -> float:
    return os.getloadavg()[0]


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def per_tool_call(base_url: str, folder: Path, rounds: int) -> dict[str, Any]:
    store = AsyncConversationStore(ConversationStore(folder / "bench.sqlite3"))
    store.sync.create_conversation(Conversation("bench-c", "bench", "p"))
    project = Project.for_root(str(folder), "bench")
    files = ProjectFiles(project)

    async def suggest(*, target: Any, proposed: str, title: str = "", mode: str = "replace") -> Any:
        suggestion = CodeSuggestion(
            id=new_id("sug"),
            user="bench",
            conversation_id="bench-c",
            message_id="m",
            target=SuggestionTarget(target.path, target.cell_index, target.cell_id),
            original=target.source,
            proposed=proposed,
            title=title,
            mode=mode,
        )
        stored = await store.add_suggestion(suggestion)
        made.append(stored.to_json())
        return stored

    made: list[dict[str, Any]] = []  # as the turn keeps them (Turn.suggestions)

    async def pending_from_store() -> list[dict[str, Any]]:
        # As the agent's: the turn's suggestions still proposed, their status read by id.
        statuses = await store.suggestion_statuses("bench-c", [s["id"] for s in made])
        return [s for s in made if statuses.get(s["id"]) == "proposed"]

    context = ChatContext(notebook_path="bench.ipynb")
    registry = default_tools()
    dispatcher = Dispatcher(registry)
    config = build_models_config(model="openai/fake", api_base=base_url, api_key="sk-b", env={})
    service = LLMService(config)
    schemas = registry.schemas()
    control = base_url.removesuffix("/v1")  # the fake's control routes are at its root
    async with httpx.AsyncClient() as client:

        async def script(n: int) -> ToolCall:
            arguments = json.dumps({"cell": 2, "source": cell_50_lines(n + 1)})
            replies = [{"tool_calls": [{"name": "replace_cell", "arguments": arguments}]}]
            await client.post(f"{control}/_fake/reset")
            (
                await client.post(f"{control}/_fake/script", json={"replies": replies})
            ).raise_for_status()
            return ToolCall("call_1", "replace_cell", arguments)

        # Warm: litellm's map (tool support), ruff's first run, the pool's connection.
        await script(0)
        async for _ in service.stream(user="b", messages=ASK, tools=schemas):
            pass
        warm = ToolContext(context=context, files=files, suggest=suggest)
        await dispatcher.run(await script(0), warm)
        broker = ApprovalBroker()

        async def answer_at_once(frame: dict[str, Any]) -> None:
            # The sidebar allowing the run and reporting its output, with no wait at all.
            if frame.get("type") == "approval":
                turn_id, approval_id = frame["id"], frame["approval_id"]
                broker.answer("bench", ApproveRequest(turn_id, approval_id, "allow"))
                output = (RunOutput("stream", "2.0\n"),)
                broker.result("bench", RunResultRequest(turn_id, approval_id, "ok", 1, output))

        run_call = ToolCall("call_r", "run_cell", '{"cell": 2}')
        model, schema_s, plain, gated, runs = [], [], [], [], []
        for n in range(rounds):
            call = await script(n)
            started = time.perf_counter()
            async for _ in service.stream(user="b", messages=ASK, tools=schemas):
                pass
            model.append(time.perf_counter() - started)
            started = time.perf_counter()
            estimate_tokens(ASK, None, registry.schemas())
            schema_s.append(time.perf_counter() - started)
            for review, sink in ((False, plain), (True, gated)):
                ctx = ToolContext(context=context, files=files, suggest=suggest, review=review)
                started = time.perf_counter()
                outcome = await dispatcher.run(call, ctx)
                sink.append(time.perf_counter() - started)
                assert outcome.result.ok, outcome.result.text
            # run_cell: the notebook read, pending edits laid over it (from the store),
            # the approval frame, the broker's answer and result, the answer's text.
            channel = broker.channel("bench", "bench-c", f"t{n}", answer_at_once)
            ctx = ToolContext(
                context=context,
                files=files,
                suggest=suggest,
                request_approval=channel.ask,
                pending_suggestions=pending_from_store,
            )
            started = time.perf_counter()
            outcome = await dispatcher.run(run_call, ctx)
            runs.append(time.perf_counter() - started)
            assert outcome.result.ok, outcome.result.text
    await service.aclose()
    await store.aclose()
    started = time.perf_counter()
    default_tools().schemas()
    first_build = time.perf_counter() - started
    return {
        "model": ms(model),
        "schema_per_call": ms(schema_s),
        "schema_first_build": first_build * 1000,
        "dispatch_no_gate": ms(plain),
        "dispatch_gate": ms(gated),
        "dispatch_run": ms(runs),
        "load": load(),
    }


def task_replies(n: int) -> list[Any]:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_cells", {}),
        ("read_cell", {"cell": 2}),
        ("list_variables", {}),
        ("read_cell", {"cell": 1}),
        ("replace_cell", {"cell": 2, "source": cell_50_lines(n + 1)}),
        ("read_file", {"path": "bench.ipynb", "start_line": 1, "end_line": 20}),
        ("insert_cell", {"after": 2, "source": "print(step_1(4))"}),
        ("inspect_variable", {"name": "df"}),
        ("list_cells", {"outputs": False}),
    ]
    replies: list[Any] = [{"tool_calls": [{"name": c, "arguments": a}]} for c, a in calls]
    return [*replies, "Suggested a tidier cell 2 and a check below it."]


def run_task_replies(n: int) -> list[Any]:
    """Nine tool calls, two of them approved runs, then the answer."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_cells", {}),
        ("read_cell", {"cell": 2}),
        ("replace_cell", {"cell": 2, "source": cell_50_lines(n + 1)}),
        ("run_cell", {"cell": 2}),
        ("insert_cell", {"after": 2, "source": "print(step_1(4))"}),
        ("run_cell", {"cell": 3}),
        ("list_variables", {}),
        ("read_cell", {"cell": 3}),
        ("list_cells", {"outputs": False}),
    ]
    replies: list[Any] = [{"tool_calls": [{"name": c, "arguments": a}]} for c, a in calls]
    return [*replies, "Replaced cell 2, added a check below it, and both ran."]


async def end_to_end(
    base_url: str, folder: Path, rounds: int, *, runs: bool = False
) -> dict[str, Any]:
    config = build_models_config(model="openai/fake", api_base=base_url, api_key="sk-b", env={})
    service = LLMService(config)
    store = AsyncConversationStore(ConversationStore(folder / "task.sqlite3"))
    preferences = PreferenceBook(store)
    project = Project.for_root(str(folder), "bench")
    engines = {**build_engines(preferences=preferences), "agent": AgentConversation()}
    manager = SessionManager(
        store=store,
        model=service,
        has_model=lambda: True,
        engines=engines,
        preferences=preferences,
        project=project,
        history_tokens=lambda _m: 2000,
        files=ProjectFiles(project),
    )
    schemas = default_tools().schemas()
    context = ChatContext(
        notebook_path="bench.ipynb", variables=(), agent=AgentAbilities(can_run=runs)
    )
    replies_for = run_task_replies if runs else task_replies
    answered = 0

    async def emit(frame: dict[str, Any]) -> None:
        # The client, answering each approval at once (as a user who allows every run).
        nonlocal answered
        if frame.get("type") == "approval":
            answered += 1
            turn_id, approval_id = frame["id"], frame["approval_id"]
            manager.approvals.answer("bench", ApproveRequest(turn_id, approval_id, "allow"))
            output = (RunOutput("stream", "2.0\n"),)
            manager.approvals.result(
                "bench", RunResultRequest(turn_id, approval_id, "ok", 1, output)
            )

    control = base_url.removesuffix("/v1")  # the fake's control routes are at its root
    async with httpx.AsyncClient() as client:

        async def script(n: int) -> None:
            await client.post(f"{control}/_fake/reset")
            (
                await client.post(f"{control}/_fake/script", json={"replies": replies_for(n)})
            ).raise_for_status()

        async def raw(n: int) -> float:
            await script(n)
            started = time.perf_counter()
            for _ in range(10):
                async for _piece in service.stream(user="b", messages=ASK, tools=schemas):
                    pass
            return time.perf_counter() - started

        async def turn(n: int) -> float:
            await script(n)
            request = ChatRequest(
                id=f"t{n}", conversation_id=f"c{n}", text="/agent tidy cell 2", context=context
            )
            started = time.perf_counter()
            await manager.run_turn("bench", request, emit)
            elapsed = time.perf_counter() - started
            # Every scripted reply was used: the turn made its 10 model calls.
            assert (await client.get(f"{control}/_fake/script")).json()["replies"] == []
            return elapsed

        await raw(0)
        await turn(0)
        before = answered
        raws, turns = [], []
        for n in range(1, rounds + 1):
            if n % 2:
                raws.append(await raw(n))
                turns.append(await turn(n))
            else:
                turns.append(await turn(n))
                raws.append(await raw(n))
    await manager.close()
    await service.aclose()
    await store.aclose()
    # Paired by round (the two ran back to back): steadier than a difference of medians
    # on a machine whose other tenants come and go.
    paired = [(t - r) / 9 for t, r in zip(turns, raws, strict=True)]
    if runs:  # two approvals per measured turn, every one answered
        assert answered - before == 2 * rounds, (answered, before, rounds)
    return {
        "raw_10_calls": ms(raws),
        "turn": ms(turns),
        "per_tool_call": ms(paired),
        "load": load(),
    }


async def main(rounds: int) -> None:
    process, base_url = start_fake()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            make_project(folder)
            print(f"machine: {machine()}; load before: {load():.2f}")
            per = await per_tool_call(base_url, folder, rounds)
            print(
                f"per tool call (50-line cell), {rounds} rounds, load {per['load']:.2f}:\n"
                f"  model call through LLMService (baseline): {per['model']:.2f} ms\n"
                f"  schemas per model call: {per['schema_per_call']:.3f} ms "
                f"(first build {per['schema_first_build']:.2f} ms)\n"
                f"  dispatch + persist, no review gate: {per['dispatch_no_gate']:.2f} ms "
                f"({per['dispatch_no_gate'] / per['model']:.2f}x the model call)\n"
                f"  dispatch + persist, review gate: {per['dispatch_gate']:.2f} ms "
                f"({per['dispatch_gate'] / per['model']:.2f}x the model call)\n"
                f"  run_cell, approval answered at once: {per['dispatch_run']:.2f} ms "
                f"({per['dispatch_run'] / per['model']:.2f}x the model call)"
            )
            e2e = await end_to_end(base_url, folder, rounds)
            print(
                f"10-step task end to end, load {e2e['load']:.2f}:\n"
                f"  10 model calls through LLMService alone: {e2e['raw_10_calls']:.1f} ms\n"
                f"  the agent turn (9 tool calls + answer): {e2e['turn']:.1f} ms "
                f"({e2e['turn'] / e2e['raw_10_calls']:.2f}x)\n"
                "  RubberDuck's overhead per tool call (median of per-round differences): "
                f"{e2e['per_tool_call']:.1f} ms"
            )
            runs = await end_to_end(base_url, folder, rounds, runs=True)
            print(
                f"10-step task with two approved runs, load {runs['load']:.2f}:\n"
                f"  10 model calls through LLMService alone: {runs['raw_10_calls']:.1f} ms\n"
                f"  the agent turn (9 tool calls, 2 of them runs, + answer): "
                f"{runs['turn']:.1f} ms ({runs['turn'] / runs['raw_10_calls']:.2f}x)\n"
                "  RubberDuck's overhead per tool call (median of per-round differences): "
                f"{runs['per_tool_call']:.1f} ms"
            )
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    asyncio.run(main(parser.parse_args().rounds))
