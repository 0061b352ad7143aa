"""Each engine against the fake provider with scripted replies: the prompts it builds
(context included, secrets redacted), its steps, corrections and suggestions; and what
each says without a model."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from engine_harness import API_KEY, Harness, answer_text, frames_of, joined

from rubberduck_jupyter.protocol import ChatContext, KernelVariable

BROKEN = "```python\ndef total(rows):\n    return sum(r['amount'] for r in rowz)\n```"
FIXED = "```python\ndef total(rows):\n    return sum(r['amount'] for r in rows)\n```"


def real_traceback(code: str) -> str:
    """A genuine traceback, as Python prints it."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    return result.stderr


async def test_simple_prompt_carries_context_variables_and_redacts_secrets(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "hunter2-but-longer")
    harness.fake.set_replies(["It filters rows."])
    context = ChatContext(
        notebook_path="sales.ipynb",
        cell_index=3,
        active_cell=f"conn = connect(password='hunter2-but-longer', key='{API_KEY}')\n"
        "df = df[df.amount > 0]",
        variables=(KernelVariable("df", "DataFrame", "1200 rows, 4 columns: id, amount"),),
    )
    frames = await harness.chat("what does this cell do?", context=context)
    assert frames[-1]["type"] == "done" and frames[-1]["engine"] == "simple"
    sent = joined(harness.prompts()[-1])
    assert "sales.ipynb (active cell 4)" in sent
    assert "df = df[df.amount > 0]" in sent
    assert "- df: DataFrame — 1200 rows, 4 columns: id, amount" in sent
    assert "hunter2-but-longer" not in sent
    assert API_KEY not in sent
    assert sent.count("[REDACTED]") >= 2


async def test_complex_engine_chains_five_steps_each_feeding_the_next(harness: Harness) -> None:
    replies = [
        "- must parse ISO dates",
        "1. write parse_dates(rows)",
        FIXED,
        "```python\ndef test_total():\n    assert total([{'amount': 2}]) == 2\n```",
        "Looks complete.",
    ]
    harness.fake.set_replies(replies)
    frames = await harness.chat("/think design a revenue summary for the orders table")
    assert frames_of(frames, "route")[0]["engine"] == "complex"
    steps = [(f["step"], f["status"]) for f in frames_of(frames, "step")]
    assert steps == [
        ("requirements", "started"),
        ("requirements", "finished"),
        ("plan", "started"),
        ("plan", "finished"),
        ("review", "started"),
        ("review", "finished"),
    ]
    reasoning = "".join(f["text"] for f in frames_of(frames, "chunk") if f.get("step") == "plan")
    assert reasoning == replies[1]
    prompts = harness.prompts()
    assert len(prompts) == 5
    # Each step's prompt contains every earlier step's output.
    for i in range(1, 5):
        for earlier in replies[:i]:
            assert earlier in joined(prompts[i]), (i, earlier)
    answer = answer_text(frames)
    assert "### Implementation" in answer and "### Tests" in answer
    assert "Looks complete." not in answer  # the review is reasoning, not answer
    assert frames[-1]["usage"]["total_tokens"] > 0
    stored = harness.store.sync.messages("conv-1")[-1]
    assert [s["step"] for s in stored.meta["steps"]] == ["requirements", "plan", "review"]


async def test_generated_code_is_corrected_and_the_rounds_are_shown(harness: Harness) -> None:
    harness.fake.set_replies(["- sum the amounts", BROKEN, FIXED])
    context = ChatContext(notebook_path="a.ipynb", cell_index=2, active_cell="rows = load()")
    frames = await harness.chat("/generate a function that totals the amounts", context=context)
    rounds = frames_of(frames, "correction")
    assert [(r["round"], r["fixed"]) for r in rounds] == [(0, False), (1, True)]
    assert any(f["code"] == "F821" and "rowz" in f["message"] for f in rounds[0]["findings"])
    reprompt = joined(harness.prompts()[-1])
    assert "rowz" in reprompt and "F821" in reprompt
    assert "Corrected after 1 re-prompt(s)" in answer_text(frames)
    (suggestion,) = frames_of(frames, "suggestion")
    proposed = suggestion["suggestion"]
    assert proposed["mode"] == "insert_after"
    assert proposed["target"]["cell_index"] == 2
    assert "for r in rows" in proposed["proposed"]


async def test_correction_stops_after_the_configured_rounds(make_harness: Any) -> None:
    h = make_harness(correction_rounds=1)
    h.fake.set_replies(["plan", BROKEN, BROKEN])
    frames = await h.chat("/generate a total function")
    assert [r["round"] for r in frames_of(frames, "correction")] == [0, 1]
    assert all(not r["fixed"] for r in frames_of(frames, "correction"))
    assert len(h.prompts()) == 3  # plan, code, one re-prompt


async def test_analysis_reviews_the_cell_with_static_findings_and_suggests(
    harness: Harness,
) -> None:
    cell = "import os\ntry:\n    value = compute(x)\nexcept:\n    pass\n"
    improved = "```python\ntry:\n    value = compute(x)\nexcept ValueError:\n    value = None\n```"
    harness.fake.set_replies([f"- **line 4** bare except.\n\n{improved}"])
    context = ChatContext(
        notebook_path="n.ipynb",
        cell_index=0,
        active_cell=cell,
        variables=(KernelVariable("compute", "function"), KernelVariable("x", "int", "3")),
    )
    frames = await harness.chat("please review this", context=context)
    assert frames_of(frames, "route")[0]["engine"] == "analysis"
    prompt = joined(harness.prompts()[-1])
    assert "   4  except:" in prompt  # the code goes with line numbers
    assert "E722" in prompt  # ruff's bare-except finding reached the model as a fact
    assert "F401" in prompt or "os" in prompt
    # compute and x live in the kernel: not reported as undefined.
    assert "Undefined name `compute`" not in prompt
    (suggestion,) = frames_of(frames, "suggestion")
    assert suggestion["suggestion"]["original"] == cell
    assert "except ValueError" in suggestion["suggestion"]["proposed"]
    diff = suggestion["suggestion"]["diff"].splitlines()
    assert diff[:2] == ["--- a/n.ipynb [cell 0]", "+++ b/n.ipynb [cell 0]"]
    assert "-except:" in diff and "+except ValueError:" in diff


async def test_problem_solver_uses_traceback_cell_and_variables(harness: Harness) -> None:
    cell = "prices = {'apple': 1.5}\nprint(prices['appel'])"
    error = real_traceback(cell)
    harness.fake.set_replies(
        [
            "**Root cause** a typo.\n\n**Fix**\n```python\nprices = {'apple': 1.5}\n"
            "print(prices['apple'])\n```"
        ]
    )
    context = ChatContext(
        notebook_path="fruit.ipynb",
        cell_index=5,
        cell_id="abc",
        active_cell=cell,
        error=error,
        variables=(KernelVariable("prices", "dict", "len 1"),),
    )
    frames = await harness.chat("why does this fail?", context=context)
    route = frames_of(frames, "route")[0]
    assert route["engine"] == "problem_solver" and route["confidence"] >= 0.9
    prompt = joined(harness.prompts()[-1])
    assert "Parsed error: KeyError" in prompt
    assert "Static diagnosis" in prompt
    assert "- prices: dict — len 1" in prompt
    assert "Traceback (most recent call last)" in prompt
    (suggestion,) = frames_of(frames, "suggestion")
    assert suggestion["suggestion"]["target"] == {
        "path": "fruit.ipynb",
        "cell_index": 5,
        "cell_id": "abc",
    }
    assert "prices['apple']" in suggestion["suggestion"]["proposed"]


async def test_help_and_unknown_commands_never_call_the_model(harness: Harness) -> None:
    frames = await harness.chat("/help")
    text = answer_text(frames)
    for command in ("/review", "/fix", "/generate", "/plan", "/think"):
        assert command in text
    frames = await harness.chat("/frobnicate now")
    assert "`/frobnicate` is not a command" in answer_text(frames)
    assert harness.prompts() == []


# --- without a model ----------------------------------------------------------------------


async def test_without_a_model_every_engine_answers_plainly(offline: Harness) -> None:
    cell = "import pandas as pd\ndef f(x=[]):\n    return undefined_thing + 1\n"
    review = await offline.chat("/review", context=ChatContext(active_cell=cell, cell_index=1))
    notices = frames_of(review, "notice")
    assert notices and "No model is configured" in notices[0]["message"]
    text = answer_text(review)
    assert "F821" in text and "undefined_thing" in text
    assert "B006" in text  # mutable default argument, from ruff

    error = real_traceback("import json\njson.loads('{bad')")
    fix = await offline.chat(
        "/fix", context=ChatContext(active_cell="json.loads('{bad')", error=error)
    )
    assert "JSONDecodeError" in answer_text(fix)
    assert frames_of(fix, "notice")

    generate = await offline.chat("/generate a loader")
    assert "cannot write new code" in answer_text(generate)
    assert offline.fake.requests == []
    for frames in (review, fix, generate):
        assert frames[-1]["type"] == "done" and frames[-1]["model"] is None


async def test_suggestions_are_stored_with_their_message(harness: Harness) -> None:
    harness.fake.set_replies([FIXED])
    context = ChatContext(
        notebook_path="x.ipynb",
        cell_index=0,
        active_cell="total(rowz)",
        error=real_traceback("rowz"),
    )
    frames = await harness.chat("fix this error", context=context)
    (frame,) = frames_of(frames, "suggestion")
    stored = harness.store.sync.get_suggestion(frame["suggestion"]["id"])
    assert stored is not None and stored.user == "alice"
    assert stored.message_id == frames[-1]["message_id"]
    answer = harness.store.sync.messages("conv-1")[-1]
    assert answer.meta["suggestions"] == [stored.id]


async def test_architecture_analysis_summarises_the_project(harness: Harness) -> None:
    pkg = harness.root / "shop"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "orders.py").write_text("from shop import pricing\n\ndef total(o):\n    return 1\n")
    (pkg / "pricing.py").write_text("from shop import orders\n\ndef price(x):\n    return x\n")
    harness.fake.set_replies(["**shop.orders** and **shop.pricing** import each other."])
    frames = await harness.chat("/architecture")
    assert frames_of(frames, "route")[0]["engine"] == "analysis"
    prompt = joined(harness.prompts()[-1])
    assert "shop/orders.py" in prompt or "shop.orders" in prompt
    assert "cycles" in prompt  # the import cycle is part of the summary the model reads


async def test_architecture_without_a_model_shows_the_structure(offline: Harness) -> None:
    (offline.root / "etl.py").write_text("def load():\n    return 1\n")
    frames = await offline.chat("/architecture")
    text = answer_text(frames)
    assert "Project structure (1 modules)" in text and "etl" in text


async def test_review_of_named_files_stays_inside_the_project(
    harness: Harness, tmp_path: Any
) -> None:
    import nbformat

    (harness.root / "etl.py").write_text("def load(p):\n    return open(p).read()\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("total = sum(values)")]
    nbformat.write(nb, str(harness.root / "report.ipynb"))
    (tmp_path / "outside.py").write_text("SECRET_PLAN = 1\n")
    (harness.root / "sneaky.py").symlink_to(tmp_path / "outside.py")
    improved = "```python\ndef load(p):\n    with open(p) as f:\n        return f.read()\n```"
    harness.fake.set_replies([improved, improved])

    frames = await harness.chat("/review etl.py and ../outside.py and sneaky.py")
    prompt = joined(harness.prompts()[-1])
    assert "return open(p).read()" in prompt
    assert "SECRET_PLAN" not in prompt
    (suggestion,) = frames_of(frames, "suggestion")
    assert suggestion["suggestion"]["target"]["path"] == "etl.py"
    assert suggestion["suggestion"]["target"]["cell_index"] is None

    frames = await harness.chat("/review report.ipynb", conversation="c2")
    assert "   1  # In[0]\n   2  total = sum(values)" in joined(harness.prompts()[-1])
    # A whole notebook rendered as code cannot be replaced by one code block.
    assert frames_of(frames, "suggestion") == []


SECRET_CELL = (
    "import boto3\n"
    "AWS_SECRET = 'q8Zr2LmX7vNp4Tk9Wd3Hs6YbQ8Zr2LmX7vNp4Tk9'\n"
    "client = boto3.client('s3', aws_secret_access_key=AWS_SECRET)\n"
    "try:\n    client.list_buckets()\nexcept:\n    pass\n"
)


async def test_a_review_suggestion_keeps_the_secrets_the_model_never_saw(
    harness: Harness,
) -> None:
    # The model saw the secret line as [REDACTED] and wrote it back unchanged.
    improved = (
        "```python\nimport boto3\nAWS_SECRET = '[REDACTED]'\n"
        "client = boto3.client('s3', aws_secret_access_key=AWS_SECRET)\n"
        "try:\n    client.list_buckets()\nexcept Exception:\n    raise\n```"
    )
    harness.fake.set_replies([f"- **line 6** bare except.\n\n{improved}"])
    context = ChatContext(notebook_path="n.ipynb", cell_index=0, active_cell=SECRET_CELL)
    frames = await harness.chat("please review this", context=context)
    assert "q8Zr2LmX7vNp4Tk9" not in joined(harness.prompts()[-1])
    (suggestion,) = frames_of(frames, "suggestion")
    proposed = suggestion["suggestion"]["proposed"]
    assert "AWS_SECRET = 'q8Zr2LmX7vNp4Tk9Wd3Hs6YbQ8Zr2LmX7vNp4Tk9'" in proposed
    assert "[REDACTED]" not in proposed and "except Exception:" in proposed


async def test_a_suggestion_that_changes_a_redacted_line_is_withheld(harness: Harness) -> None:
    changed = (
        "```python\nimport boto3, os\nAWS_SECRET = os.environ.get('X', '[REDACTED]')\n"
        "client = boto3.client('s3', aws_secret_access_key=AWS_SECRET)\n```"
    )
    harness.fake.set_replies([f"- move the secret out.\n\n{changed}"])
    context = ChatContext(notebook_path="n.ipynb", cell_index=0, active_cell=SECRET_CELL)
    frames = await harness.chat("please review this", context=context)
    assert frames_of(frames, "suggestion") == []
    notices = [f for f in frames_of(frames, "notice") if f["code"] == "suggestion_withheld"]
    assert notices and "[REDACTED]" in notices[0]["message"]
    assert frames[-1]["type"] == "done"


async def test_a_suggestion_that_does_not_parse_is_not_offered(harness: Harness) -> None:
    # An echoing model returns our numbered listing; without its numbers it still fails.
    numbered_back = "```python\n   1  import os\n   2  value = = 1\n```"
    harness.fake.set_replies([f"- fine.\n\n{numbered_back}"])
    context = ChatContext(notebook_path="n.ipynb", cell_index=0, active_cell="import os\n")
    frames = await harness.chat("please review this", context=context)
    assert frames_of(frames, "suggestion") == []
    (notice,) = [f for f in frames_of(frames, "notice") if f["code"] == "suggestion_unparsable"]
    assert "line 2" in notice["message"]
