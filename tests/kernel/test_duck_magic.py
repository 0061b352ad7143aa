"""%%duck in a real IPython kernel started by the Jupyter server, with no user setup: every
subcommand against the fake provider, the context it sends, and the display it updates."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.kernel.kernel_harness import ANSWER_MIME, execute, prompt_of, server_kernel

pytestmark = pytest.mark.kernel


async def test_the_answer_streams_into_one_display_updated_in_place(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    words = [f"word{i} " for i in range(30)]
    fake_llm.set_replies(["".join(words) + "\n\n```python\ndf.dropna()\n```"])
    fake_llm.update_settings({"chunk_delay": 0.02})
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        out = await execute(kernel, "%%duck\nHow do I drop missing rows in pandas")
    assert out.error == "" and out.stdout == "", out
    # One display, then updates of that same display: the output does not grow.
    assert len(out.displays) == 1
    display_id = out.displays[0][0]
    assert display_id and all(u[0] == display_id for u in out.updates)
    assert out.displays[0][1][ANSWER_MIME]["status"] == "waiting"
    assert len(out.updates) >= 3, "the answer should show while it streams"
    answer = out.answer()
    assert answer["status"] == "done" and answer["version"] == 1
    assert answer["markdown"].startswith("word0 word1") and "df.dropna()" in answer["markdown"]
    assert answer["server_url"] == jp_serverapp.connection_url
    assert answer["model"] and answer["engine"]
    final = out.final_bundle()
    # Other front ends get the same answer as Markdown, and as text.
    assert "```python\ndf.dropna()\n```" in final["text/markdown"]
    assert "df.dropna()" in final["text/plain"]
    # A partial answer was shown on the way (not only the first and the last state).
    partial = [u[1][ANSWER_MIME]["markdown"] for u in out.updates[:-1]]
    assert any(0 < len(p) < len(answer["markdown"]) for p in partial)
    # Bounded: at most 20 updates a second while streaming (plus the final one).
    times = [u[2] for u in out.updates]
    if len(times) > 2:
        rate = (len(times) - 2) / max(times[-2] - times[0], 1e-9)
        assert rate <= 22, rate
    # This server has no index: the answer says so beside it.
    assert any(n["code"] == "no_index" for n in answer["notices"])


async def test_follow_ups_share_one_conversation_until_new(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["Use dropna.", "Pass subset=.", "Fresh start."])
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        await execute(kernel, "%duck how do I drop missing rows")
        again = await execute(kernel, "%%duck\nOnly some columns?")
        new = await execute(kernel, "%duck new")
        await execute(kernel, "%duck a new topic")
        history = await execute(kernel, "%duck history")
    assert again.answer()["markdown"] == "Pass subset=."
    assert "how do I drop missing rows" in prompt_of(fake_llm.requests[1])
    assert "started a new conversation" in new.stdout
    assert "how do I drop missing rows" not in prompt_of(fake_llm.requests[2])
    shown = history.answer()
    assert shown["title"].startswith("This kernel's conversation (2 messages")
    assert "a new topic" in shown["markdown"] and "Fresh start." in shown["markdown"]
    assert "drop missing rows" not in shown["markdown"]


async def test_braced_names_and_vars_send_precise_descriptions(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["Group by region.", "ok", "ok"])
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        await execute(
            kernel,
            "import pandas as pd\n"
            "df = pd.DataFrame({'region': ['n', 's', 'n'], 'sales': [3.5, 1.0, 2.25]})\n"
            "limits = {'north': 3}",
        )
        asked = await execute(
            kernel, "%%duck --rows 2\nWhat is the mean of sales by region in {df}"
        )
        by_option = await execute(kernel, "%duck --vars limits,df --no-vars what do these hold")
        missing = await execute(kernel, "%duck --vars nope what is it")
    assert asked.error == "" and by_option.error == ""
    prompt = prompt_of(fake_llm.requests[0])
    # The question names `df`; its description is attached, with rows since --rows 2.
    assert "What is the mean of sales by region in df" in prompt
    assert "{df}" not in prompt
    assert "Kernel variable `df`: pandas.DataFrame" in prompt
    assert "shape: (3, 2)" in prompt
    assert "region (object)" in prompt or "region (str)" in prompt
    assert "sales (float64)" in prompt
    assert "RangeIndex" in prompt  # the index is described too
    assert "3.50" in prompt or "3.5" in prompt.split("values:")[1]
    second = prompt_of(fake_llm.requests[1])
    assert "Kernel variable `limits`: dict" in second and "Kernel variable `df`" in second
    assert "Kernel variables:" not in second  # --no-vars: no namespace summary
    assert "does not define" in missing.stderr and len(fake_llm.requests) == 2


async def test_cells_option_sends_the_previous_cells(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["They load and clean."])
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        await execute(kernel, "loaded = list(range(5))")
        await execute(kernel, "cleaned = [x for x in loaded if x % 2]")
        await execute(kernel, "%duck --cells 2 what do the last cells do")
    prompt = prompt_of(fake_llm.requests[0])
    assert "loaded = list(range(5))" in prompt
    assert "cleaned = [x for x in loaded if x % 2]" in prompt
    assert "%load_ext" not in prompt  # only the two asked for


async def test_review_reviews_the_previous_cell_or_a_numbered_one(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["Looks fine.", "Second review."])
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        first = await execute(kernel, "total = 0\nfor x in [1, 2]:\n    total += x")
        await execute(kernel, "print(total)")
        review = await execute(kernel, "%duck review")
        numbered = await execute(kernel, "%duck review 2 focus on naming")
        nowhere = await execute(kernel, "%duck review 99")
    assert first.error == ""
    assert review.answer()["title"] == "Review of In [3]"
    assert review.answer()["engine"] == "analysis"
    assert "print(total)" in prompt_of(fake_llm.requests[0])
    assert numbered.answer()["title"] == "Review of In [2]"
    second = prompt_of(fake_llm.requests[1])
    assert "total += x" in second and "focus on naming" in second
    assert "In [99] does not exist" in nowhere.stderr


async def test_fix_sends_the_real_traceback_the_cell_and_its_variables(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["The column is called 'sales'. Use `df['sales']`."])
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        none_yet = await execute(kernel, "%duck fix")
        await execute(
            kernel, "import pandas as pd\ndf = pd.DataFrame({'sales': [1, 2]})\nunused = 4"
        )
        failed = await execute(kernel, "total = df['price'].sum()")
        fix = await execute(kernel, "%duck fix")
    assert "Nothing has failed" in none_yet.stderr
    assert "KeyError" in failed.error
    answer = fix.answer()
    assert answer["title"] == "Fix for KeyError: 'price' in In [4]"
    assert answer["engine"] == "problem_solver"
    prompt = prompt_of(fake_llm.requests[0])
    assert "Traceback (most recent call last)" in prompt and "KeyError: 'price'" in prompt
    assert "total = df['price'].sum()" in prompt
    assert "Kernel variable `df`: pandas.DataFrame" in prompt
    assert "Kernel variable `unused`" not in prompt  # the failing cell does not touch it
    assert "\x1b[" not in prompt  # no terminal colours in what the model reads


async def test_engine_option_and_slash_commands_choose_the_engine(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["```python\ndef add(a, b):\n    return a + b\n```", "plan", "ok"])
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        generated = await execute(kernel, "%%duck --engine generate\na function adding two numbers")
        planned = await execute(kernel, "%%duck\n/plan clean the data then chart it")
        bad = await execute(kernel, "%%duck --engine 'x y'\nhello")
    assert generated.answer()["engine"] == "generation"
    assert planned.answer()["engine"] == "multi_step"
    assert "--engine takes one of" in bad.stderr


async def test_models_and_use(jp_fetch: Any, jp_serverapp: Any, fake_llm: Any) -> None:
    fake_llm.set_replies(["ok"])
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        listed = await execute(kernel, "%duck models")
        refused = await execute(kernel, "%duck use gpt-nonexistent")
        used = await execute(kernel, "%duck use fast")
        await execute(kernel, "%duck hello")
        listed_after = await execute(kernel, "%duck models")
    assert "* main" in listed.stdout and "  fast" in listed.stdout
    assert "'gpt-nonexistent' is not a model you may use here" in refused.stderr
    assert "now asks fast" in used.stdout
    assert fake_llm.requests[0]["model"] == "fake-fast"
    assert "* fast" in listed_after.stdout


async def test_help_and_bad_arguments_are_one_line(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        shown = await execute(kernel, "%duck help")
        cases = [
            await execute(kernel, "%duck --rows many what"),
            await execute(kernel, "%duck --colour red what"),
            await execute(kernel, "%%duck extra words\nbody"),
            await execute(kernel, "%duck"),
            await execute(kernel, "%duck search"),
            await execute(kernel, "%duck apply"),
            await execute(kernel, "%duck connect"),
        ]
    for sub in ("review", "fix", "search", "history", "models", "use", "new", "connect"):
        assert f"%duck {sub}" in shown.stdout
    for case in cases:
        assert case.error == "", case  # never a traceback
        lines = case.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("RubberDuck: "), case
    assert fake_llm.requests == []


async def test_a_stop_from_the_browser_ends_the_answer_as_stopped(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies([" ".join(f"w{i}" for i in range(400))])
    fake_llm.update_settings({"chunk_delay": 0.05})
    cancelled: list[dict[str, Any]] = []

    async def stop_when_streaming(kind: str, content: dict[str, Any]) -> None:
        answer = content.get("data", {}).get(ANSWER_MIME, {})
        if kind == "update_display_data" and answer.get("markdown") and not cancelled:
            response = await jp_fetch(
                "rubberduck",
                "api",
                "chat",
                "cancel",
                method="POST",
                body=json.dumps({"id": answer["turn_id"]}),
            )
            cancelled.append(json.loads(response.body))

    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        out = await execute(kernel, "%duck write a lot", on_message=stop_when_streaming)
        again = await jp_fetch(
            "rubberduck", "api", "chat", "cancel", method="POST", body=json.dumps({"id": "gone"})
        )
    assert cancelled == [{"cancelled": True}]
    assert json.loads(again.body) == {"cancelled": False}
    answer = out.answer()
    assert answer["status"] == "stopped"
    assert 0 < len(answer["markdown"]) < 400 * 3
    assert "*Stopped.*" in out.final_bundle()["text/markdown"]
    await asyncio.sleep(0.2)
    assert fake_llm.active_streams == 0


async def test_the_server_refusing_or_missing_is_one_line(
    jp_fetch: Any, jp_serverapp: Any, fake_llm: Any
) -> None:
    async with server_kernel(jp_fetch, jp_serverapp) as kernel:
        await execute(kernel, "import os; real = os.environ['RUBBERDUCK_KERNEL_TOKEN']")
        await execute(kernel, "os.environ['RUBBERDUCK_KERNEL_TOKEN'] = 'forged'")
        refused = await execute(kernel, "%%duck\nhello")
        await execute(kernel, "os.environ['RUBBERDUCK_KERNEL_TOKEN'] = real")
        await execute(kernel, "url = os.environ.pop('RUBBERDUCK_SERVER_URL')")
        unknown = await execute(kernel, "%duck hello")
        await execute(kernel, "os.environ['RUBBERDUCK_SERVER_URL'] = 'http://127.0.0.1:9/'")
        unreachable = await execute(kernel, "%duck hello")
        await execute(kernel, "os.environ['RUBBERDUCK_SERVER_URL'] = url")
        fake_llm.add_faults(["429", "429", "429", "429"])
        limited = await execute(kernel, "%duck hello")
    assert "refused this kernel's credentials" in refused.stderr
    assert "%duck connect" in unknown.stderr and unknown.error == ""
    assert "No RubberDuck server answers at http://127.0.0.1:9/" in unreachable.stderr
    for case in (refused, unknown, unreachable):
        assert len(case.stderr.strip().splitlines()) == 1, case
    error = limited.answer()["error"]
    assert error["code"] in ("rate_limited", "provider_unavailable"), error
    assert limited.error == ""
