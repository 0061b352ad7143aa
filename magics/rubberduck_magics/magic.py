"""The %duck line magic and %%duck cell magic."""

from __future__ import annotations

import sys
import traceback
import uuid

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .client import DuckClient, DuckError, ServerAddress
from .variables import describe_namespace


def _last_error() -> str | None:
    if getattr(sys, "last_value", None) is None:
        return None
    lines = traceback.format_exception(sys.last_type, sys.last_value, sys.last_traceback)
    return "".join(lines)


@magics_class
class DuckMagics(Magics):
    def __init__(self, shell: object) -> None:
        super().__init__(shell)
        # One conversation per kernel until --new, so follow-up questions have memory.
        self.conversation_id = f"kernel-{uuid.uuid4().hex}"

    @line_cell_magic
    @magic_arguments()
    @argument("--new", action="store_true", help="Start a new conversation.")
    @argument("--error", action="store_true", help="Include the last traceback as context.")
    @argument("--no-vars", action="store_true", help="Do not describe the kernel's variables.")
    @argument("question", nargs="*", help="With %%duck as a line magic: the question.")
    def duck(self, line: str, cell: str | None = None) -> None:
        """Ask RubberDuck. `%%duck` sends the cell body; `%duck QUESTION` sends the line."""
        args = parse_argstring(self.duck, line)
        if args.new:
            self.conversation_id = f"kernel-{uuid.uuid4().hex}"
        text = (cell if cell is not None else " ".join(args.question)).strip()
        if not text:
            print("Nothing to ask: put a question in the cell (or after %duck).", file=sys.stderr)
            return
        context: dict[str, object] = {}
        if args.error:
            error = _last_error()
            if error:
                context["error"] = error
        if not args.no_vars:
            # IPython's own names (In, Out, _1...) are in user_ns_hidden.
            hidden = set(getattr(self.shell, "user_ns_hidden", {}))
            context["variables"] = describe_namespace(self.shell.user_ns, hidden)
        try:
            client = DuckClient(ServerAddress.from_env())
            self._stream(client, text, context)
        except DuckError as exc:
            print(f"RubberDuck: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            # Closing the response makes the server stop the model call.
            print("\n[stopped]", file=sys.stderr)

    def _stream(self, client: DuckClient, text: str, context: dict[str, object]) -> None:
        frames = client.stream_chat(text, conversation_id=self.conversation_id, context=context)
        for frame in frames:
            kind = frame.get("type")
            if kind == "chunk" and "step" not in frame:
                sys.stdout.write(frame["text"])
                sys.stdout.flush()
            elif kind == "step" and frame.get("status") == "started":
                # Reasoning steps stay out of the output; say what is happening meanwhile.
                print(f"[{frame.get('title')}…]", file=sys.stderr)
            elif kind == "notice":
                print(f"RubberDuck: {frame.get('message')}", file=sys.stderr)
            elif kind == "suggestion":
                title = frame.get("suggestion", {}).get("title") or "a change"
                print(
                    f"\n[suggestion: {title}; apply it from the RubberDuck sidebar]",
                    file=sys.stderr,
                )
            elif kind == "done":
                sys.stdout.write("\n")
                if frame.get("finish_reason") not in (None, "stop"):
                    print(f"[{frame['finish_reason']}]", file=sys.stderr)
                return
            elif kind == "error":
                sys.stdout.write("\n")
                print(f"RubberDuck ({frame.get('code')}): {frame.get('message')}", file=sys.stderr)
                return
