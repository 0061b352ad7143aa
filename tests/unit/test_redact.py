from __future__ import annotations

from rubberduck_jupyter.context.memory import MemoryWindow
from rubberduck_jupyter.context.prompt import build_turn_messages
from rubberduck_jupyter.context.redact import REDACTED, Redactor, redact, secret_env_values
from rubberduck_jupyter.domain.models import Conversation, Message
from rubberduck_jupyter.protocol import ChatContext


def test_known_token_shapes_are_redacted() -> None:
    text = (
        "openai sk-proj-abcdefghijklmnopqrstuvwx aws AKIAABCDEFGHIJKLMNOP "
        "gh ghp_abcdefghijklmnopqrstuvwxyz0123456789 auth: Bearer abc.def.ghijklmnop"
    )
    out = redact(text, extra_secrets=[])
    assert "sk-proj-abcdefghijklmnopqrstuvwx" not in out
    assert "AKIAABCDEFGHIJKLMNOP" not in out
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in out
    assert "abc.def.ghijklmnop" not in out
    assert out.count(REDACTED) == 4


def test_assignments_keep_the_name_and_drop_the_value() -> None:
    out = redact('db_password = "hunter2hunter2"\nAPI_KEY: s3cr3tvalue', extra_secrets=[])
    assert out == f'db_password = "{REDACTED}"\nAPI_KEY: {REDACTED}'


def test_ordinary_code_is_untouched() -> None:
    code = "def tokenize(text):\n    return text.split()\nkeys = list(d.keys())"
    assert redact(code, extra_secrets=[]) == code


def test_secret_environment_values_are_found_by_name() -> None:
    env = {"MY_SERVICE_TOKEN": "tok-12345678", "PATH": "/usr/bin:/bin", "SHORT_KEY": "abc"}
    assert secret_env_values(env) == ["tok-12345678"]
    assert redact("value tok-12345678 here", ["tok-12345678"]) == f"value {REDACTED} here"


def test_the_process_environment_scan_follows_changes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The scan of os.environ is kept between calls: a key set or removed later still counts.
    before = secret_env_values()
    monkeypatch.setenv("LATE_SERVICE_TOKEN", "late-private-value-1")
    assert "late-private-value-1" in secret_env_values()
    assert redact("it is late-private-value-1") == f"it is {REDACTED}"
    monkeypatch.setenv("LATE_SERVICE_TOKEN", "late-private-value-2")
    values = secret_env_values()
    assert "late-private-value-2" in values and "late-private-value-1" not in values
    monkeypatch.delenv("LATE_SERVICE_TOKEN")
    assert secret_env_values() == before


def test_prompt_redacts_context_history_and_question(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WAREHOUSE_SECRET", "wh-very-private-value")
    earlier = [
        Message(f"m{i}", "c", i, role, text, f"t{i}")
        for i, (role, text) in enumerate(
            [("user", "earlier: wh-very-private-value"), ("assistant", "noted")]
        )
    ]
    messages = build_turn_messages(
        system="sys",
        preferences="",
        conversation=Conversation("c", "u", "p"),
        history=earlier,
        window=MemoryWindow(1000),
        context=ChatContext(active_cell="conn = connect('wh-very-private-value')"),
        question="and now?",
    )
    messages = Redactor()(messages)  # what the LLM service does at its door
    joined = "\n".join(m["content"] for m in messages)
    assert "wh-very-private-value" not in joined
    assert joined.count(REDACTED) == 2
    assert messages[-1]["content"].endswith("Question:\nand now?")


def test_env_values_that_look_like_tokens_are_secret_whatever_their_name() -> None:
    env = {
        "SERVICE_X": "q8Zr2LmX7vNp4Tk9Wd3Hs6Yb",  # a generated token under a plain name
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "JUPYTER_DATA_DIR": "/home/user/.local/share/jupyter",
        "GREETING": "hello world, this is long",
        "LANG": "en_US.UTF-8",
        "COUNT": "12345678901234567890123",
    }
    assert secret_env_values(env) == ["q8Zr2LmX7vNp4Tk9Wd3Hs6Yb"]


def test_passwords_in_urls_are_redacted() -> None:
    out = redact("engine = create_engine('postgresql://etl:Sup3r-s3cret@db:5432/sales')", [])
    assert "Sup3r-s3cret" not in out
    assert f"postgresql://etl:{REDACTED}@db:5432/sales" in out
    assert redact("see https://example.org/a@b", []) == "see https://example.org/a@b"


def test_a_model_written_summary_is_bounded_in_every_prompt() -> None:
    from rubberduck_jupyter.context.prompt import MAX_SUMMARY_CHARS

    conversation = Conversation("c", "u", "p", summary="s" * (MAX_SUMMARY_CHARS * 5))
    messages = build_turn_messages(
        system="sys",
        preferences="",
        conversation=conversation,
        history=[],
        window=MemoryWindow(1000),
        context=ChatContext(),
        question="next?",
    )
    summary = next(m["content"] for m in messages if m["content"].startswith("Summary"))
    assert MAX_SUMMARY_CHARS < len(summary) < MAX_SUMMARY_CHARS + 200


def test_kernel_variables_named_like_secrets_are_sent_without_their_value() -> None:
    from rubberduck_jupyter.context.prompt import describe_context
    from rubberduck_jupyter.protocol import KernelVariable

    described = describe_context(
        ChatContext(
            variables=(
                KernelVariable("db_password", "str", "'letmein'"),
                KernelVariable("df", "DataFrame", "shape (3, 2)"),
            )
        )
    )
    assert described is not None
    assert "letmein" not in described and f"db_password: str — {REDACTED}" in described
    assert "df: DataFrame — shape (3, 2)" in described


def test_restore_puts_back_the_lines_the_model_kept_and_counts_the_rest() -> None:
    from rubberduck_jupyter.context.redact import restore_redacted

    original = "import os\n    password = 'hunter2hunter2'\nurl = 'postgresql://a:pw-123456@db/x'\n"
    seen = redact(original, [])
    assert "hunter2" not in seen and "pw-123456" not in seen
    # kept, re-indented, and one line changed by the model
    proposed = seen.replace("    password", "        password") + f"token = '{REDACTED}x'\n"
    restored, unresolved = restore_redacted(original, proposed, Redactor(lambda: []))
    assert "        password = 'hunter2hunter2'" in restored
    assert "postgresql://a:pw-123456@db/x" in restored
    assert unresolved == 1
    assert restore_redacted(original, "x = 1\n", Redactor())[0] == "x = 1\n"
