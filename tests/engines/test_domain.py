"""Domain policies (one test each), actions on real files, the conversation actor."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nbformat
import pytest

from rubberduck_jupyter.domain.actions import (
    ActionError,
    ProjectFiles,
    SuggestionConflict,
    analyze_code,
    apply_suggestion,
    generate_tests,
)
from rubberduck_jupyter.domain.models import (
    CodeFile,
    CodeSuggestion,
    Conversation,
    Project,
    SuggestionStatus,
    SuggestionTarget,
    User,
)
from rubberduck_jupyter.domain.policies import (
    NotPermitted,
    may_apply_suggestion,
    may_change_conversation,
    may_read_conversation,
    may_use_project,
    require_conversation,
)
from rubberduck_jupyter.sessions.actor import ActorRegistry, Job, MailboxFull

ALICE, BOB = User("alice"), User("bob")


def _suggestion(
    target: SuggestionTarget, original: str, proposed: str, **kw: object
) -> CodeSuggestion:
    return CodeSuggestion("s1", "alice", "c1", "m1", target, original, proposed, **kw)  # type: ignore[arg-type]


# --- policies -----------------------------------------------------------------------------


def test_policy_project_owner_members_or_everyone_the_server_admits() -> None:
    private = Project.for_root("/p", "alice", frozenset())
    assert may_use_project(ALICE, private) and not may_use_project(BOB, private)
    team = Project.for_root("/p", "alice", frozenset({"bob"}))
    assert may_use_project(BOB, team) and not may_use_project(User("eve"), team)
    assert may_use_project(User("eve"), Project.for_root("/p", "alice"))


def test_policy_conversation_read_and_change_only_by_its_user() -> None:
    conversation = Conversation("c1", "alice", "p")
    assert may_read_conversation(ALICE, conversation)
    assert may_change_conversation(ALICE, conversation)
    assert not may_read_conversation(BOB, conversation)
    assert not may_change_conversation(BOB, conversation)
    with pytest.raises(NotPermitted, match="No conversation 'c1'"):
        require_conversation(BOB, conversation, "c1")
    with pytest.raises(NotPermitted):
        require_conversation(ALICE, None, "missing")


def test_policy_suggestion_applied_only_by_its_user() -> None:
    suggestion = _suggestion(SuggestionTarget("a.py"), "x = 1\n", "x = 2\n")
    assert may_apply_suggestion(ALICE, suggestion)
    assert not may_apply_suggestion(BOB, suggestion)


# --- actions ------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> ProjectFiles:
    root = tmp_path / "root"
    root.mkdir()
    return ProjectFiles(Project.for_root(str(root), "alice", frozenset()))


async def test_apply_suggestion_to_a_file_then_refuse_a_stale_one(files: ProjectFiles) -> None:
    (files.root / "calc.py").write_text("def f():\n    return 1\n")
    first = _suggestion(
        SuggestionTarget("calc.py"), "def f():\n    return 1\n", "def f():\n    return 2\n"
    )
    applied = await apply_suggestion(ALICE, first, "s1", files)
    assert applied.status is SuggestionStatus.APPLIED
    assert (files.root / "calc.py").read_text() == "def f():\n    return 2\n"
    with pytest.raises(SuggestionConflict):
        await apply_suggestion(ALICE, first, "s1", files)  # made against the old text
    with pytest.raises(ActionError, match="already applied"):
        await apply_suggestion(ALICE, applied, "s1", files)


async def test_apply_suggestion_refuses_other_users_and_outside_paths(
    files: ProjectFiles, tmp_path: Path
) -> None:
    (tmp_path / "secret.py").write_text("x = 1\n")
    (files.root / "link.py").symlink_to(tmp_path / "secret.py")
    mine = _suggestion(SuggestionTarget("a.py"), "", "y")
    with pytest.raises(NotPermitted):
        await apply_suggestion(BOB, mine, "s1", files)
    for path in ("../secret.py", "link.py", "/etc/passwd"):
        escaping = _suggestion(SuggestionTarget(path), "x = 1\n", "x = 2\n")
        with pytest.raises(ActionError):
            await apply_suggestion(ALICE, escaping, "s1", files)
    assert (tmp_path / "secret.py").read_text() == "x = 1\n"
    outsider = ProjectFiles(Project.for_root(str(files.root), "carol", frozenset()))
    with pytest.raises(NotPermitted):
        await apply_suggestion(ALICE, mine, "s1", outsider)


async def test_apply_suggestion_to_notebook_cells_by_id_and_insert_after(
    files: ProjectFiles,
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_code_cell("b = a +")]
    nbformat.write(nb, str(files.root / "n.ipynb"))
    cell_id = nb.cells[1].id
    # Cell moved since (an insert above it): found by its id, not its old index.
    moved = nbformat.read(str(files.root / "n.ipynb"), as_version=4)
    moved.cells.insert(0, nbformat.v4.new_markdown_cell("# Title"))
    nbformat.write(moved, str(files.root / "n.ipynb"))
    fix = _suggestion(SuggestionTarget("n.ipynb", 1, cell_id), "b = a +", "b = a + 1")
    await apply_suggestion(ALICE, fix, "s1", files)
    after = nbformat.read(str(files.root / "n.ipynb"), as_version=4)
    assert [c.source for c in after.cells] == ["# Title", "a = 1", "b = a + 1"]
    add = _suggestion(SuggestionTarget("n.ipynb", 1), "", "print(a)", mode="insert_after")
    await apply_suggestion(ALICE, add, "s2", files)
    after = nbformat.read(str(files.root / "n.ipynb"), as_version=4)
    assert [c.source for c in after.cells] == ["# Title", "a = 1", "print(a)", "b = a + 1"]
    nbformat.validate(after)
    json.loads((files.root / "n.ipynb").read_text())


def test_analyze_code_and_generate_tests_run_for_an_actor(files: ProjectFiles) -> None:
    report = analyze_code(ALICE, "def f(x=[]):\n    return y\n")
    codes = {f.code for f in report.findings}
    assert {"B006", "F821"} <= codes
    assert report.functions[0].name == "f"
    (files.root / "m.py").write_text("import os\n")
    with pytest.raises(NotPermitted):
        analyze_code(BOB, CodeFile("m.py", "import os\n"), project=files.project)
    skeleton = generate_tests(ALICE, "def add(a, b):\n    return a + b\n", "calc")
    assert "def test_add" in skeleton and "from calc import" in skeleton


# --- the actor ----------------------------------------------------------------------------


async def test_actor_runs_one_conversation_in_order_and_others_in_parallel() -> None:
    registry = ActorRegistry(mailbox_size=4, idle_timeout=0.2)
    log: list[str] = []
    gate = asyncio.Event()

    def job(name: str, wait: bool = False) -> Job:
        async def work() -> str:
            log.append(f"start {name}")
            if wait:
                await gate.wait()
            log.append(f"end {name}")
            return name

        return Job(name, work)

    first, second, other = job("a1", wait=True), job("a2"), job("b1")
    registry.get("alice", "c1").submit(first)
    registry.get("alice", "c1").submit(second)
    registry.get("bob", "c1").submit(other)
    assert await asyncio.wait_for(other.done, 2) == "b1"  # not stuck behind alice's turn
    assert "start a2" not in log
    gate.set()
    assert await asyncio.gather(first.done, second.done) == ["a1", "a2"]
    assert log.index("end a1") < log.index("start a2")
    await asyncio.sleep(0.5)
    assert len(registry) == 0  # idle actors stopped themselves


async def test_actor_mailbox_is_bounded_and_queued_turns_can_be_cancelled() -> None:
    registry = ActorRegistry(mailbox_size=1, idle_timeout=5)
    gate = asyncio.Event()

    async def blocked() -> None:
        await gate.wait()

    async def quick() -> str:
        return "ran"

    actor = registry.get("alice", "c1")
    running = Job("t1", blocked)
    actor.submit(running)
    await asyncio.sleep(0.05)
    waiting = Job("t2", quick)
    actor.submit(waiting)
    with pytest.raises(MailboxFull):
        actor.submit(Job("t3", quick))
    assert actor.cancel("t2")
    assert waiting.done.cancelled()
    assert actor.cancel("t1")
    with pytest.raises(asyncio.CancelledError):
        await running.done
    await registry.stop()


async def test_stop_never_hangs_when_a_job_arrives_as_the_actor_stops() -> None:
    # Python 3.11's wait_for swallowed a cancel that arrived as the mailbox handed over a
    # job; the actor then waited on its mailbox again and a server stop hung for good.
    async def quick() -> str:
        return "ran"

    for _ in range(20):
        registry = ActorRegistry(mailbox_size=4, idle_timeout=300)
        actor = registry.get("alice", "c1")
        await asyncio.sleep(0)  # the actor now waits on its mailbox
        actor.submit(Job("t", quick))
        await asyncio.wait_for(registry.stop(), 10)
        assert not actor.alive
