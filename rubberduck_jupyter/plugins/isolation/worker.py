"""The isolation worker: one untrusted plugin in its own process, behind resource limits.

    python -m rubberduck_jupyter.plugins.isolation.worker --name hello --file /p/hello.py \
        --memory-mib 512 --cpu-s 30 --nofile 64

Order of events, and why:

1. Take the RPC channel off fds 0 and 1 (dup them), then point fd 1 at stderr and fd 0 at
   /dev/null. A plugin's `print()` (or a C extension writing to fd 1) then lands in the
   supervisor's bounded stderr log instead of corrupting the RPC stream.
2. Set the limits (`resource.setrlimit`) here, at the top of main, not in `preexec_fn`:
   `preexec_fn` runs between fork and exec in a copy of the *server* process, which has
   threads (index, SQLite, executors), and CPython documents it as unsafe with threads (a
   lock held by another thread at fork time deadlocks the child). Here it runs in a fresh
   interpreter with one thread, before the plugin's code is imported. Hard limits equal the
   soft ones (CPU: soft + 2 s), so the plugin cannot raise them again (that needs
   CAP_SYS_RESOURCE). RLIMIT_CORE is 0 so SIGXCPU leaves no core file behind.
3. Import the plugin (a file, a package directory, or an entry-point value), validate its
   spec, commands and hooks with the same core checks the registry uses, and send the
   handshake: the spec, the commands, the hooks, or the reason it could not load.
4. Serve calls until stdin closes. Each call runs as its own task (calls overlap); a
   command's `ctx` is a stand-in whose methods are RPC calls answered in the server by the
   real CommandContext, so permissions are checked there, not here.

A MemoryError anywhere ends the worker with EXIT_MEMORY: a process that hit RLIMIT_AS may
have half-built state, and the supervisor restarts it fresh and reports "memory limit".
Measured on the 2-core dev machine: an idle worker (interpreter, pluggy, packaging and the
plugin core, one small plugin) has 27 MiB resident (VmHWM) and 32 MiB of address space
(VmPeak, what RLIMIT_AS counts), so the 512 MiB default leaves the plugin ~480 MiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys

# Nothing from this package is imported at module level: `python -m` runs this file as
# __main__, and a package module importing it first would make a second copy (runpy warns).

MIB = 1024 * 1024


def set_limits(memory_mib: int, cpu_s: int, nofile: int) -> None:
    """Apply the limits (soft = hard) for this process and everything it execs."""
    from .rpc import CPU_HARD_GRACE_S  # the package's stdlib-only wire module

    limits = {
        resource.RLIMIT_AS: (memory_mib * MIB, memory_mib * MIB),
        resource.RLIMIT_CPU: (cpu_s, cpu_s + CPU_HARD_GRACE_S),
        resource.RLIMIT_NOFILE: (nofile, nofile),
        resource.RLIMIT_CORE: (0, 0),
    }
    for which, (soft, hard) in limits.items():
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))


def take_stdio() -> tuple[int, int]:
    """(rpc_in, rpc_out): private copies of fds 0 and 1; fd 1 becomes stderr, fd 0 /dev/null."""
    rpc_in, rpc_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    return rpc_in, rpc_out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rubberduck plugin worker")
    p.add_argument("--name", required=True, help="the plugin's installed name")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", help="a plugin file (folder plugin)")
    where.add_argument("--package", help="a plugin package directory (folder plugin)")
    where.add_argument("--module", help="an entry-point value, 'pkg.mod' or 'pkg.mod:attr'")
    p.add_argument("--memory-mib", type=int, default=512)
    p.add_argument("--cpu-s", type=int, default=30)
    p.add_argument("--nofile", type=int, default=64)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rpc_in, rpc_out = take_stdio()
    set_limits(args.memory_mib, args.cpu_s, args.nofile)
    # Imported after the limits on purpose: from here on, every allocation counts.
    import asyncio

    from .rpc import EXIT_MEMORY
    from .serve import Worker

    try:
        return asyncio.run(Worker(args, rpc_in, rpc_out).serve())
    except MemoryError:
        os._exit(EXIT_MEMORY)
    except Exception as exc:  # a bug here, not the plugin's: say it on stderr
        print(f"rubberduck plugin worker {args.name!r} failed: {exc!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
