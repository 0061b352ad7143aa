"""An untrusted plugin for the isolation tests: one command per behaviour under test."""

import asyncio
import os
import sys
import time

from rubberduck_jupyter.plugins import PermissionRefused, command, hookimpl, plugin

spec = plugin(
    name="good",
    version="1.0",
    api=">=1,<2",
    permissions=[],  # no call_model: ctx.ask must be refused in the server
    provides=["generation"],
    description="Test plugin run in an isolation worker",
)


@command("echo", help="Echo the argument and what ctx carried", args=["TEXT", "MORE?"])
async def echo(ctx, text, more=None):
    print("echo printed this", flush=True)  # must reach stderr, not the RPC channel
    return {
        "text": text,
        "more": more,
        "ctx_text": ctx.text,
        "user": ctx.user,
        "cell": ctx.active_cell,
        "has_model": ctx.has_model,
        "pid": os.getpid(),
    }


@command("asks", help="Ask the model through ctx")
async def asks(ctx):
    try:
        return {"answer": await ctx.ask("what?")}
    except PermissionRefused as exc:
        return {"refused": type(exc).__name__, "message": str(exc)}


@command("boom", help="Raise")
async def boom(ctx):
    raise ValueError("boom from the worker")


@command("nap", help="Sleep asynchronously", args=["SECONDS"])
async def nap(ctx, seconds):
    await asyncio.sleep(float(seconds))
    return os.getpid()


@command("block", help="Block the worker's event loop")
async def block(ctx):
    time.sleep(30)  # noqa: ASYNC251 - blocking on purpose: the behaviour under test


@command("hog", help="Allocate 1 GB")
async def hog(ctx):
    data = bytearray(1 << 30)
    return len(data)


@command("spin", help="Burn CPU")
async def spin(ctx):
    while True:
        pass


@command("garble", help="Write raw bytes to the RPC channel")
async def garble(ctx):
    fd = sys.modules["rubberduck_jupyter.plugins.isolation.serve"].RPC_OUT_FD
    os.write(fd, b"\xff\xff\xff\xffnot a frame")
    await asyncio.sleep(30)


@command("noop", help="Do nothing")
async def noop(ctx):
    return None


@command("secret", help="Report whether a server secret leaked into the environment")
async def secret(ctx):
    return os.environ.get("RUBBERDUCK_API_KEY")


@hookimpl(tryfirst=True)
def pre_input(text):
    return text + " [good]"


@hookimpl
async def route_hint(text, context):
    return "isolated-engine" if "route me" in text else None


@command("spawn", help="Start a subprocess that outlives nothing")
async def spawn(ctx):
    import subprocess

    return subprocess.Popen(["sleep", "30"]).pid  # noqa: ASYNC220 - a child on purpose


@command("flood", help="Fire 100 ctx calls without awaiting each")
async def flood(ctx):
    results = await asyncio.gather(*[ctx.say("x") for _ in range(100)], return_exceptions=True)
    errors = [str(r) for r in results if isinstance(r, Exception)]
    return {"errors": len(errors), "first": errors[0] if errors else ""}


@command("fds", help="Open files until the limit says no")
async def fds(ctx):
    held = []
    try:
        for _ in range(1000):
            held.append(open(os.devnull))  # noqa: SIM115, ASYNC230 - held open on purpose
    except OSError as exc:
        return {"opened": len(held), "error": str(exc)}
    finally:
        for f in held:
            f.close()
    return {"opened": len(held), "error": ""}
