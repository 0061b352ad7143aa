"""The %duck line magic and %%duck cell magic: the whole assistant from a cell.

`%duck QUESTION` and `%%duck` ask; `%duck review|fix|search|history|models|use|new|apply|
connect|help` do the rest (docs/magics.md). Everything a user can get wrong ends in one line
on stderr that says what to do, never a traceback.
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from .answer import DONE, AnswerState
from .client import DuckClient, DuckError, ServerAddress
from .kernel import (
    FailureWatch,
    braced_names,
    current_cell_id,
    history_cell,
    in_a_kernel,
    names_in_code,
    previous_cells,
    unbrace,
)
from .output import Output, PlainOutput, RichOutput, follow
from .variables import describe_namespace

ENGINES = ("review", "fix", "generate", "plan", "think", "explain", "ask")
SUBCOMMANDS = (
    "review",
    "fix",
    "search",
    "history",
    "models",
    "use",
    "new",
    "apply",
    "connect",
    "help",
)
MAX_ROWS = 50
MAX_VARS = 20  # the server takes at most 20 mentions per message
MAX_SEARCH_HITS = 10

HELP = """\
%%duck [options]          ask with the cell's body; {name} attaches variable `name`
%duck QUESTION            ask a one-line question (same options, before the question)
%duck review [N] [focus]  review the previous cell, or In [N]
%duck fix [note]          explain and fix the last exception, from its real traceback
%duck search QUERY        search the project's index
%duck history             this kernel's conversation so far
%duck models              the models you may use (* marks this kernel's)
%duck use MODEL           ask MODEL from now on in this kernel
%duck new                 start a new conversation
%duck apply [ID]          apply a suggestion on disk (in JupyterLab, use its Apply button)
%duck connect URL --token TOKEN   point this kernel at a RubberDuck server
%duck help                this list

options: --vars a,b (describe these variables)  --rows N (with a few rows)
         --cells N (send the N previous cells)   --error (send the last traceback)
         --engine review|fix|generate|plan|think  --model NAME  --no-vars  --new
Slash commands work too: %%duck then /review, /fix, /generate, /plan ... on the first line.\
"""


@dataclass
class Options:
    new: bool = False
    error: bool = False
    no_vars: bool = False
    vars: list[str] = field(default_factory=list)
    rows: int = 0
    cells: int = 0
    engine: str | None = None
    model: str | None = None


_FLAGS = {"--new": "new", "--error": "error", "--no-vars": "no_vars"}
_VALUED = ("--vars", "--rows", "--cells", "--engine", "--model")


def parse_options(line: str) -> tuple[Options, str]:
    """Leading `--options` of `line`, and the rest verbatim (a question keeps its quotes,
    apostrophes and dashes: it is not shell syntax)."""
    opts = Options()
    rest = line.strip()
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        key, eq, inline = word.partition("=")
        if key in _FLAGS:
            if eq:
                raise DuckError(f"{key} takes no value.")
            setattr(opts, _FLAGS[key], True)
            rest = after.strip()
            continue
        if key not in _VALUED:
            raise DuckError(f"Unknown option {key}; `%duck help` lists the options.")
        if eq:
            value = inline
        else:
            value, _, after = after.strip().partition(" ")
        if not value:
            raise DuckError(f"{key} needs a value, e.g. {key} {_EXAMPLES[key]}.")
        _set_valued(opts, key, value)
        rest = after.strip()
    return opts, rest


_EXAMPLES = {"--vars": "df,model", "--rows": "5", "--cells": "3", "--engine": "review"}
_EXAMPLES["--model"] = "openai/gpt-4o-mini"


def _set_valued(opts: Options, key: str, value: str) -> None:
    if key == "--vars":
        names = [n.strip() for n in value.split(",") if n.strip()]
        bad = [n for n in names if not n.isidentifier()]
        if bad:
            raise DuckError(f"--vars takes variable names separated by commas, not {bad[0]!r}.")
        opts.vars = names
    elif key in ("--rows", "--cells"):
        limit = MAX_ROWS if key == "--rows" else 20
        if not value.isdigit() or not 0 <= int(value) <= limit:
            raise DuckError(f"{key} takes a number from 0 to {limit}, not {value!r}.")
        setattr(opts, key[2:], int(value))
    elif key == "--engine":
        name = value.lstrip("/")
        if not name.replace("-", "").replace("_", "").isalnum():
            raise DuckError(f"--engine takes one of {', '.join(ENGINES[:5])}, not {value!r}.")
        opts.engine = name
    else:
        opts.model = value


@magics_class
class DuckMagics(Magics):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        # One conversation per kernel until `%duck new`, so follow-ups have memory.
        self.conversation_id = f"kernel-{uuid.uuid4().hex}"
        self.model: str | None = None
        self.address: ServerAddress | None = None  # set by %duck connect
        self.last_suggestions: list[dict[str, Any]] = []
        self.last_output: Output | None = None  # for tests and benchmarks
        self.failures = FailureWatch()
        self.cell_ids: dict[int, str] = {}
        events = getattr(shell, "events", None)
        if events is not None:
            events.register("post_run_cell", self.failures)
            events.register("post_run_cell", self._remember_cell_id)

    def _remember_cell_id(self, result: Any) -> None:
        count = getattr(result, "execution_count", None)
        cell_id = current_cell_id(self.shell)
        if isinstance(count, int) and cell_id:
            self.cell_ids[count] = cell_id
            if len(self.cell_ids) > 10_000:  # a long-lived kernel: keep the recent ones
                for old in sorted(self.cell_ids)[:5_000]:
                    del self.cell_ids[old]

    # --- entry ---------------------------------------------------------------------------

    @no_var_expand
    @line_cell_magic
    def duck(self, line: str, cell: str | None = None) -> None:
        """Ask RubberDuck; `%duck help` lists the subcommands and options."""
        try:
            self._run(line, cell)
        except DuckError as exc:
            print(f"RubberDuck: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            print("[stopped]", file=sys.stderr)

    def _run(self, line: str, cell: str | None) -> None:
        word, _, rest = line.strip().partition(" ")
        if cell is None and word in SUBCOMMANDS:
            getattr(self, f"_cmd_{word}")(rest.strip())
            return
        opts, question = parse_options(line)
        if cell is not None:
            if question:
                raise DuckError(
                    "With %%duck the question is the cell's body; the first line takes "
                    "only options (`%duck help`)."
                )
            question = cell
        if opts.new:
            self.conversation_id = f"kernel-{uuid.uuid4().hex}"
        question = question.strip()
        if not question:
            if opts.new:
                print("RubberDuck: started a new conversation.", file=sys.stderr)
                return
            raise DuckError("Nothing to ask: put a question in the cell (or after %duck).")
        self._ask(question, opts)

    # --- asking --------------------------------------------------------------------------

    def _ask(
        self,
        question: str,
        opts: Options,
        *,
        title: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> AnswerState:
        ns = self.shell.user_ns
        context = dict(context or {})
        named = braced_names(question, ns)
        text = unbrace(question, named)
        wanted = list(dict.fromkeys(named + opts.vars))
        missing = [n for n in opts.vars if n not in ns]
        if missing:
            raise DuckError(f"--vars names {missing[0]!r}, which this kernel does not define.")
        mentions: list[dict[str, Any]] = list(context.pop("mentions", []))
        mentions += self._describe(wanted[:MAX_VARS], opts.rows)
        for number, source in previous_cells(self.shell, opts.cells):
            mentions.append({"kind": "cell", "cell": number, "cell_type": "code", "source": source})
        if mentions:
            context["mentions"] = mentions[:MAX_VARS]
        if opts.error and "error" not in context:
            failure = self.failures.last
            if failure is not None:
                context["error"] = failure.traceback
        if not opts.no_vars:
            # IPython's own names (In, Out, _1...) are in user_ns_hidden.
            hidden = set(getattr(self.shell, "user_ns_hidden", {}))
            context["variables"] = describe_namespace(ns, hidden)
        # The server that started this kernel names its notebook, relative to its root.
        notebook = os.environ.get("RUBBERDUCK_NOTEBOOK_PATH")
        if notebook and "notebook_path" not in context and self.address is None:
            context["notebook_path"] = notebook
        if opts.engine and not text.startswith("/"):
            text = f"/{opts.engine} {text}"
        client = self._client()
        stream = client.open_chat(
            text,
            conversation_id=self.conversation_id,
            context=context,
            model=opts.model or self.model,
        )
        state = AnswerState(client.address.url, stream.turn_id, self.conversation_id, title)
        output = self._output(state)
        self.last_output = output
        follow(stream, state, output)
        if state.suggestions:
            self.last_suggestions = state.suggestions
        return state

    def _describe(self, names: list[str], rows: int) -> list[dict[str, Any]]:
        if not names:
            return []
        from .describe import describe_object

        ns = self.shell.user_ns
        return [describe_object(name, ns[name], rows=rows) for name in names]

    def _output(self, state: AnswerState) -> Output:
        if in_a_kernel(self.shell):
            return RichOutput(state)
        return PlainOutput(state)

    def _client(self) -> DuckClient:
        return DuckClient(self.address or ServerAddress.from_env())

    # --- subcommands ---------------------------------------------------------------------

    def _cmd_help(self, rest: str) -> None:
        print(HELP)

    def _cmd_new(self, rest: str) -> None:
        self.conversation_id = f"kernel-{uuid.uuid4().hex}"
        print("RubberDuck: started a new conversation in this kernel.")

    def _cmd_review(self, rest: str) -> None:
        number_text, _, focus = rest.partition(" ")
        if number_text.isdigit():
            number = int(number_text)
            source = history_cell(self.shell, number)
            if source is None:
                raise DuckError(f"In [{number}] does not exist in this kernel's history.")
        else:
            focus = rest
            previous = previous_cells(self.shell, 1)
            if not previous:
                raise DuckError("There is no earlier cell to review: run one first.")
            number, source = previous[0]
        if not source.strip():
            raise DuckError(f"In [{number}] is empty: nothing to review.")
        question = "/review " + (focus.strip() or f"Review this cell (In [{number}]).")
        self._ask(
            question,
            Options(),
            title=f"Review of In [{number}]",
            context=self._cell_context(number, source),
        )

    def _cmd_fix(self, rest: str) -> None:
        failure = self.failures.last
        if failure is None:
            raise DuckError("Nothing has failed in this kernel yet: run the failing cell first.")
        names = [
            n
            for n in names_in_code(failure.source, self._transform)
            if n in self.shell.user_ns and not n.startswith("_")
        ]
        context = self._cell_context(failure.execution_count, failure.source)
        context["error"] = failure.traceback
        context["mentions"] = self._describe_safely(names[:MAX_VARS])
        note = rest.strip() or f"Explain and fix this error: {failure.exception}"
        where = f"In [{failure.execution_count}]" if failure.execution_count else "the last cell"
        self._ask(
            "/fix " + note,
            Options(),
            title=f"Fix for {failure.exception} in {where}",
            context=context,
        )

    def _describe_safely(self, names: list[str]) -> list[dict[str, Any]]:
        from .describe import describe_object

        ns = self.shell.user_ns
        out = []
        for name in names:
            value = ns[name]
            # Modules, functions and classes say nothing a fix needs that the code does not.
            if isinstance(value, type) or (callable(value) and not hasattr(value, "shape")):
                continue
            out.append(describe_object(name, value))
        return out

    def _transform(self, source: str) -> str:
        return str(self.shell.transform_cell(source))

    def _cell_context(self, number: int | None, source: str) -> dict[str, Any]:
        context: dict[str, Any] = {"active_cell": source, "cell_type": "code"}
        cell_id = self.cell_ids.get(number) if number is not None else None
        if cell_id:
            context["cell_id"] = cell_id  # so a suggestion targets that cell for Apply
        return context

    def _cmd_search(self, rest: str) -> None:
        query = rest.strip()
        if not query:
            raise DuckError("Search for what? `%duck search how we load the sales data`.")
        client = self._client()
        found = client.get("index/search", {"q": query, "top_k": MAX_SEARCH_HITS})
        hits = [h for h in found.get("hits", []) if isinstance(h, dict)]
        state = AnswerState(client.address.url, uuid.uuid4().hex, self.conversation_id)
        state.title = f"Search: {query}"
        notice = found.get("notice")
        if isinstance(notice, dict) and notice.get("message"):
            state.notices.append({"code": str(notice.get("code")), "message": notice["message"]})
        if not hits:
            state.markdown = "No matches in the project's index."
        else:
            state.markdown = "\n\n".join(_hit_markdown(i + 1, h) for i, h in enumerate(hits))
            state.citations = [_hit_citation(i + 1, h) for i, h in enumerate(hits)]
        state.status = DONE
        self._show(state)

    def _cmd_history(self, rest: str) -> None:
        client = self._client()
        try:
            found = client.get(f"conversations/{self.conversation_id}")
        except DuckError as exc:
            if "not found" in str(exc).lower() or "no conversation" in str(exc).lower():
                print("RubberDuck: nothing asked in this kernel's conversation yet.")
                return
            raise
        messages = [m for m in found.get("messages", []) if isinstance(m, dict)]
        state = AnswerState(client.address.url, uuid.uuid4().hex, self.conversation_id)
        state.title = f"This kernel's conversation ({len(messages)} messages)"
        parts = []
        for message in messages:
            who = "**You**" if message.get("role") == "user" else "**RubberDuck**"
            parts.append(f"{who}\n\n{message.get('content', '')}")
        state.markdown = "\n\n---\n\n".join(parts) or "Nothing asked yet."
        state.status = DONE
        self._show(state)

    def _cmd_models(self, rest: str) -> None:
        found = self._client().get("models")
        models = [m for m in found.get("models", []) if isinstance(m, dict)]
        if not models:
            print(
                "RubberDuck: no model is configured on the server; see "
                "docs/configuration.md (or `jupyter rubberduck doctor`)."
            )
            return
        current = self.model or found.get("default")
        lines = []
        for entry in models:
            name = str(entry.get("name"))
            mark = "*" if name == current else " "
            where = entry.get("provider") or ""
            lines.append(f"{mark} {name}" + (f"  ({where})" if where else ""))
        print("\n".join(lines))

    def _cmd_use(self, rest: str) -> None:
        name = rest.strip()
        if not name:
            raise DuckError("Use which model? `%duck models` lists them.")
        found = self._client().get("models")
        names = [str(m.get("name")) for m in found.get("models", []) if isinstance(m, dict)]
        if name not in names:
            listed = ", ".join(names) or "none are configured"
            raise DuckError(f"{name!r} is not a model you may use here ({listed}).")
        self.model = None if name == found.get("default") else name
        print(f"RubberDuck: this kernel now asks {name}.")

    def _cmd_apply(self, rest: str) -> None:
        wanted = rest.strip()
        if not wanted:
            proposed = [s for s in self.last_suggestions if s.get("status") == "proposed"]
            if not proposed:
                raise DuckError("No suggestion to apply: the last answer made none.")
            wanted = str(proposed[-1].get("id"))
        if not wanted.replace("-", "").replace("_", "").isalnum():
            raise DuckError(f"{wanted!r} is not a suggestion id.")
        applied = self._client().post(f"suggestions/{wanted}/apply")
        target = applied.get("target") or {}
        where = target.get("path") if isinstance(target, dict) else None
        title = applied.get("title") or wanted
        print(f"RubberDuck: applied {title}" + (f" to {where}." if where else "."))

    def _cmd_connect(self, rest: str) -> None:
        words = rest.split()
        if not words or words[0].startswith("--"):
            raise DuckError("Connect to what? `%duck connect http://HOST:8888/ --token TOKEN`.")
        url, token = words[0], None
        tail = words[1:]
        if tail:
            if tail[0] == "--token" and len(tail) == 2:
                token = tail[1]
            elif tail[0].startswith("--token=") and len(tail) == 1:
                token = tail[0].split("=", 1)[1]
            else:
                raise DuckError("After the URL, give only --token TOKEN.")
        address = ServerAddress.given(url, token or os.environ.get("RUBBERDUCK_TOKEN"))
        found = DuckClient(address).get("models")  # proves the address and the token
        self.address = address
        default = found.get("default") or "no model configured"
        print(f"RubberDuck: connected to {address.url} ({default}) for this kernel's session.")

    # --- showing -------------------------------------------------------------------------

    def _show(self, state: AnswerState) -> None:
        if in_a_kernel(self.shell):
            from IPython.display import display

            display(state.bundle(), raw=True)
        else:
            print(state.to_plain())


def _hit_markdown(n: int, hit: dict[str, Any]) -> str:
    path = str(hit.get("path", ""))
    where = ""
    if isinstance(hit.get("cell"), int):
        where = f", cell {hit['cell']}"
    elif isinstance(hit.get("start_line"), int):
        where = f", lines {hit['start_line']}-{hit.get('end_line')}"
    text = str(hit.get("text", "")).strip()
    if len(text) > 400:
        text = text[:400].rstrip() + " …"
    quoted = "\n".join("> " + line for line in text.splitlines()[:8])
    score = hit.get("score")
    shown = f" · score {score:.3f}" if isinstance(score, int | float) else ""
    return f"**[{n}]** `{path}`{where}{shown}\n\n{quoted}"


def _hit_citation(n: int, hit: dict[str, Any]) -> dict[str, Any]:
    keys = ("path", "kind", "cell", "start_line", "end_line", "title", "score")
    return {"n": n, **{k: hit[k] for k in keys if k in hit}}
