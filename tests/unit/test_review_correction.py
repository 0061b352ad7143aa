"""The self-correction loop with scripted re-prompts and the real static checker."""

from __future__ import annotations

import asyncio
import threading
from functools import partial

import pytest

from rubberduck_jupyter.review.correction import (
    CorrectionLoop,
    RoundReport,
    check_answer,
    reprompt_text,
)
from rubberduck_jupyter.review.findings import Finding
from rubberduck_jupyter.review.static import analyze_python


def _answer(*blocks: str) -> str:
    parts = ["Here you go."]
    for code in blocks:
        parts += ["```python", code, "```", "Some explanation."]
    return "\n".join(parts)


CLEAN = _answer("import pandas as pd\nframe = pd.DataFrame({'a': [1]})")
ONE_ERROR = _answer("frame = pd.DataFrame({'a': [1]})")  # pd undefined
TWO_ERRORS = _answer("frame = pd.DataFrame(records)")  # pd and records undefined
SYNTAX = _answer("for row in rows\n    print(row)")
WARNING_ONLY = _answer("def add(item, bucket=[]):\n    bucket.append(item)\n    return bucket")

check = partial(analyze_python, known_names={"rows"})


class ScriptedModel:
    """Answers re-prompts from a script and records what it was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, list[Finding], int]] = []

    async def __call__(self, answer: str, findings: list[Finding], round_number: int) -> str:
        self.calls.append((answer, findings, round_number))
        return self.answers.pop(0)


def test_a_clean_answer_costs_no_reprompt() -> None:
    model = ScriptedModel()
    result = asyncio.run(CorrectionLoop(check).run(CLEAN, model))
    assert model.calls == []
    assert result.final_answer == CLEAN and result.clean
    assert [(r.round, r.fixed, r.findings) for r in result.rounds] == [(0, True, [])]


def test_errors_are_sent_back_and_the_loop_stops_once_clean() -> None:
    model = ScriptedModel(CLEAN, ONE_ERROR)  # the second answer is never asked for
    reports: list[RoundReport] = []

    async def on_round(report: RoundReport) -> None:
        reports.append(report)

    result = asyncio.run(CorrectionLoop(check, max_rounds=2).run(SYNTAX, model, on_round))
    assert result.final_answer == CLEAN and result.clean and result.best_round == 1
    assert [(r.round, r.fixed) for r in result.rounds] == [(0, False), (1, True)]
    assert reports == result.rounds  # reported as they happened
    ((answer, findings, round_number),) = model.calls
    assert (answer, round_number) == (SYNTAX, 1)
    assert [(f.code, f.line, f.block) for f in findings] == [("SyntaxError", 1, 0)]


def test_warnings_are_reported_but_never_trigger_a_reprompt() -> None:
    model = ScriptedModel()
    result = asyncio.run(CorrectionLoop(check).run(WARNING_ONLY, model))
    assert model.calls == []
    (report,) = result.rounds
    assert report.fixed and [f.code for f in report.findings] == ["B006"]
    assert result.findings == report.findings


def test_max_rounds_bounds_the_reprompts_and_the_best_answer_is_kept() -> None:
    model = ScriptedModel(ONE_ERROR, TWO_ERRORS, CLEAN)
    result = asyncio.run(CorrectionLoop(check, max_rounds=2).run(TWO_ERRORS, model))
    assert [c[2] for c in model.calls] == [1, 2]  # CLEAN was never reached
    assert [len(r.errors) for r in result.rounds] == [2, 1, 2]
    assert not result.clean
    assert (result.best_round, result.final_answer) == (1, ONE_ERROR)
    # only errors travel to the model, each tagged with its block
    assert all(f.is_error and f.block == 0 for _, found, _ in model.calls for f in found)


def test_equal_error_counts_keep_the_earliest_answer() -> None:
    other_error = _answer("frame = pandas.DataFrame()")
    model = ScriptedModel(other_error)
    result = asyncio.run(CorrectionLoop(check, max_rounds=1).run(ONE_ERROR, model))
    assert [len(r.errors) for r in result.rounds] == [1, 1]
    assert result.final_answer == ONE_ERROR


def test_zero_rounds_only_checks() -> None:
    model = ScriptedModel(CLEAN)
    result = asyncio.run(CorrectionLoop(check, max_rounds=0).run(ONE_ERROR, model))
    assert model.calls == [] and len(result.rounds) == 1 and not result.clean
    with pytest.raises(ValueError):
        CorrectionLoop(check, max_rounds=-1)


def test_the_check_runs_off_the_event_loop() -> None:
    """The check blocks until a coroutine on the loop releases it: this only finishes if
    the check runs in another thread while the loop keeps going."""
    released = threading.Event()
    threads: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def blocking_check(code: str) -> list[Finding]:
            threads.append(threading.get_ident())
            loop.call_soon_threadsafe(started.set)
            assert released.wait(timeout=30), "the event loop was blocked by the check"
            return []

        task = asyncio.create_task(CorrectionLoop(blocking_check).run(CLEAN, ScriptedModel()))
        await started.wait()
        released.set()
        result = await task
        assert result.clean and threads[0] != threading.get_ident()

    asyncio.run(main())


def test_reprompt_failures_propagate() -> None:
    async def broken(answer: str, findings: list[Finding], round_number: int) -> str:
        raise RuntimeError("provider down")

    with pytest.raises(RuntimeError, match="provider down"):
        asyncio.run(CorrectionLoop(check).run(ONE_ERROR, broken))


def test_findings_name_their_block_and_the_reprompt_quotes_the_lines() -> None:
    answer = _answer("import numpy as np\nvalues = np.arange(3)", "total = sum(valuse)")
    findings = check_answer(answer, check)
    assert [(f.block, f.line, f.code) for f in findings] == [(1, 1, "F821")]
    text = reprompt_text(answer, findings)
    assert "- block 2, line 1: F821 Undefined name `valuse`" in text
    assert "`total = sum(valuse)`" in text
    assert "Return the corrected answer in full" in text


def test_answers_without_python_blocks_have_nothing_to_correct() -> None:
    prose = "Use `df.dropna()` to drop missing rows.\n```bash\npip install pandas\n```"
    result = asyncio.run(CorrectionLoop(check).run(prose, ScriptedModel()))
    assert result.clean and result.rounds[0].findings == []
