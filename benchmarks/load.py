"""RubberDuck under load: N simulated users against one real `jupyter server`, while an
index pass runs; event-loop lag and the latency RubberDuck adds over the provider alone.

    python benchmarks/load.py [--users 50,200] [--rounds 3] [--think 3] [--reply-words 20]

Processes, all on 127.0.0.1: the fake provider (rubberduck_jupyter.testing.fake_llm, its
own process; it also serves the index's embeddings, the hashed bag of words of
testing/embedding.py, so indexing costs the server what a remote embedding API would), one
`jupyter server` with RubberDuck, and this client (one asyncio loop, tornado clients).

Users, in a fixed mix: half chat over the sidebar's WebSocket (one socket each, held for
the whole phase), a quarter chat over `POST /rubberduck/api/chat` as %%duck does from a
kernel, a quarter search `GET /rubberduck/api/index/search`. A chat user runs `--rounds`
rounds of: think (uniform 0..2x`--think` s), then one request straight to the fake provider
(the baseline) and the same question through RubberDuck, in alternating order. Both stream
the same reply (the fake echoes the question; the simple engine is forced, so one model
call per turn), so the difference is what RubberDuck adds: the session, routing, prompt,
redaction, persistence, frames, litellm. Added latency = percentile of RubberDuck's
latencies minus the same percentile of the baselines, for the first chunk and the whole
answer.

Phases: "cold" sends 50 chats at once right after the server answers its first request
(what a start costs: litellm's import and first call); then one phase per `--users` value,
each with a fresh copy of the pdsh notebooks being indexed. Loop lag comes from the
server's own monitor (runtime/loop_lag.py, a sample every 0.1 s into a cumulative
histogram): the phase's percentiles are those of the difference of two health snapshots,
given as bucket upper bounds. Every wait has a timeout; every count is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

TOKEN = "load-token"
CORPUS = Path("/work/shared/corpora/pdsh")
MODEL = "openai/fake-model"
TURN_TIMEOUT_S = 60.0
PHASE_TIMEOUT_S = 600.0
COLD_CHATS = 50
WORDS = (
    "pandas groupby merge the monthly sales per region then plot the totals and explain "
    "why the index is not sorted after concat with ignore_index and how to fix it"
).split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_corpus(target: Path) -> None:
    """A fresh copy per phase, so each phase's index pass has all of it to do."""
    target.mkdir(parents=True, exist_ok=True)
    for notebook in sorted(CORPUS.glob("*.ipynb")):
        shutil.copy(notebook, target / notebook.name)


def question(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + " ?"


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def lag_percentile(buckets: list[Any], counts: list[int], q: float) -> str:
    total = sum(counts)
    if total == 0:
        return "n/a"
    rank, seen = max(1, math.ceil(q * total)), 0
    for bound, count in zip(buckets, counts, strict=True):
        seen += count
        if seen >= rank:
            return f"≤{bound}"
    return "≤inf"


@dataclass
class Results:
    base_first: list[float] = field(default_factory=list)
    base_total: list[float] = field(default_factory=list)
    rd_first: list[float] = field(default_factory=list)
    rd_total: list[float] = field(default_factory=list)
    rest_total: list[float] = field(default_factory=list)
    search: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Harness:
    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        self.workdir = workdir
        self.args = args
        self.fake: subprocess.Popen[str] | None = None
        self.server: subprocess.Popen[str] | None = None
        self.fake_url = ""
        self.base = ""
        self.ws_base = ""
        self.http = AsyncHTTPClient(max_clients=2000)

    # --- processes ----------------------------------------------------------------------

    def start_fake(self) -> None:
        self.fake = subprocess.Popen(
            [sys.executable, "-m", "rubberduck_jupyter.testing.fake_llm", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.fake.stdout is not None
        line = self.fake.stdout.readline().strip()
        if "listening on" not in line:
            raise RuntimeError(f"fake provider did not start: {line!r}")
        self.fake_url = line.rsplit(" ", 1)[-1]
        settings = json.dumps({"chunk_delay": self.args.chunk_delay}).encode()
        origin = self.fake_url.rsplit("/v1", 1)[0]
        with urllib.request.urlopen(
            urllib.request.Request(f"{origin}/_fake/settings", data=settings, method="POST"),
            timeout=10,
        ):
            pass
        # One fixed reply for every request (baseline and RubberDuck alike): an echo would
        # repeat RubberDuck's whole prompt, retrieved sources included, and compare unequal
        # work. Enough for every chat of every phase, twice over.
        reply = question(random.Random("reply"), self.args.reply_words)
        count = 2 * (COLD_CHATS + sum(self.args.users) * self.args.rounds) + 100
        script = json.dumps({"replies": [reply] * count}).encode()
        with urllib.request.urlopen(
            urllib.request.Request(f"{origin}/_fake/script", data=script, method="POST"),
            timeout=10,
        ):
            pass

    def start_server(self) -> float:
        port = free_port()
        root = self.workdir / "root"
        root.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),
                "JUPYTER_DATA_DIR": str(self.workdir / "data"),
                "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            }
        )
        if self.args.asyncio_debug:
            # asyncio logs each callback that holds the loop over 100 ms, by name.
            env["PYTHONASYNCIODEBUG"] = "1"
        if self.args.stall_ms:
            # The server logs the loop's stack whenever it is blocked this long.
            env["RUBBERDUCK_LOOP_STALL_MS"] = str(self.args.stall_ms)
        command = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.jpserver_extensions={'rubberduck_jupyter': True}",
            f"--RubberDuckApp.model={MODEL}",
            f"--RubberDuckApp.api_base={self.fake_url}",
            "--RubberDuckApp.api_key=sk-load-bench",
            "--RubberDuckApp.index_embedder=litellm:openai/fake-embedding",
            f"--RubberDuckApp.index_embedder_api_base={self.fake_url}",
            "--RubberDuckApp.index_embedder_api_key=sk-load-bench",
            "--RubberDuckApp.index_watch=False",
            # Default queue (64) is for one person's server; 200 users may queue more.
            "--RubberDuckApp.rate_limit_queue_size=1024",
            # The direct OpenAI-compatible stream (default) or, with --litellm, litellm's.
            f"--RubberDuckApp.direct_openai_streaming={not self.args.litellm}",
        ]
        log = (self.workdir / "server.log").open("w")
        started = time.perf_counter()
        self.server = subprocess.Popen(command, env=env, stdout=log, stderr=log, text=True)
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError((self.workdir / "server.log").read_text()[-3000:])
            try:
                request = urllib.request.Request(
                    f"{self.base}/api/status", headers={"Authorization": f"token {TOKEN}"}
                )
                with urllib.request.urlopen(request, timeout=1):
                    return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("server did not start within 60 s")

    def stop(self) -> None:
        for process in (self.server, self.fake):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def server_pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    # --- requests -----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {TOKEN}"}

    async def health(self) -> dict[str, Any]:
        response = await self.http.fetch(
            f"{self.base}/rubberduck/api/health", headers=self._headers(), request_timeout=30
        )
        return dict(json.loads(response.body))

    async def start_index(self, folder: str) -> None:
        await asyncio.to_thread(copy_corpus, self.workdir / "root" / folder)
        await self.http.fetch(
            f"{self.base}/rubberduck/api/index",
            method="POST",
            headers=self._headers(),
            body=json.dumps({"paths": [folder]}),
            request_timeout=30,
            raise_error=False,
        )

    async def index_state(self) -> str:
        response = await self.http.fetch(
            f"{self.base}/rubberduck/api/index", headers=self._headers(), request_timeout=30
        )
        return str(json.loads(response.body).get("state"))

    async def baseline(self, text: str) -> tuple[float, float]:
        """The same question streamed straight from the fake provider."""
        body = {
            "model": "fake-model",
            "stream": True,
            "messages": [{"role": "user", "content": text}],
        }
        headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-x"}
        first, total, buffer = await self._timed_stream(
            f"{self.fake_url}/chat/completions", body, headers, b'"content"'
        )
        if b"[DONE]" not in buffer:
            raise RuntimeError("baseline stream ended without [DONE]")
        return first, total

    async def _timed_stream(
        self, url: str, body: dict[str, Any], headers: dict[str, str], marker: bytes
    ) -> tuple[float, float, bytes]:
        """POSTs `body` and reads the streamed response: seconds to the first `marker`,
        seconds in all, and the bytes received."""
        started = time.perf_counter()
        first = 0.0
        buffer = b""

        def on_chunk(data: bytes) -> None:
            nonlocal first, buffer
            buffer += data
            if not first and marker in buffer:
                first = time.perf_counter() - started

        await self.http.fetch(
            HTTPRequest(
                url,
                method="POST",
                body=json.dumps(body),
                headers=headers,
                streaming_callback=on_chunk,
                request_timeout=TURN_TIMEOUT_S,
            )
        )
        return first, time.perf_counter() - started, buffer

    async def rest_chat(self, conversation: str, msg_id: str, text: str) -> tuple[float, float]:
        frame = {"type": "chat", "v": 1, "id": msg_id, "conversation_id": conversation,
                 "text": text, "engine": "simple"}  # fmt: skip
        first, total, buffer = await self._timed_stream(
            f"{self.base}/rubberduck/api/chat", frame, self._headers(), b'"chunk"'
        )
        frames = [json.loads(line) for line in buffer.splitlines() if line.strip()]
        last = frames[-1] if frames else {}
        if last.get("type") != "done":
            raise RuntimeError(f"REST turn ended with {last}")
        return first, total

    async def ws_chat(
        self, ws: Any, conversation: str, msg_id: str, text: str
    ) -> tuple[float, float]:
        frame = {"type": "chat", "v": 1, "id": msg_id, "conversation_id": conversation,
                 "text": text, "engine": "simple"}  # fmt: skip
        started = time.perf_counter()
        first = 0.0
        await ws.write_message(json.dumps(frame))
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while True:
                raw = await ws.read_message()
                if raw is None:
                    raise RuntimeError("socket closed mid-turn")
                got = json.loads(raw)
                if got.get("id") != msg_id:
                    continue
                if got["type"] == "chunk" and not first:
                    first = time.perf_counter() - started
                if got["type"] == "error":
                    raise RuntimeError(f"error frame {got.get('code')}: {got.get('message')}")
                if got["type"] == "done":
                    return first, time.perf_counter() - started

    async def search(self, rng: random.Random) -> float:
        query = " ".join(rng.choice(WORDS) for _ in range(4))
        started = time.perf_counter()
        response = await self.http.fetch(
            f"{self.base}/rubberduck/api/index/search?q={query.replace(' ', '+')}&top_k=5",
            headers=self._headers(),
            request_timeout=TURN_TIMEOUT_S,
            raise_error=False,
        )
        # 200 with hits, or 200 empty before the first batch lands: both are answers.
        if response.code != 200:
            raise RuntimeError(f"search answered {response.code}: {response.body[:200]!r}")
        return time.perf_counter() - started

    async def open_ws(self) -> Any:
        request = HTTPRequest(
            f"{self.ws_base}/rubberduck/ws", headers=self._headers(), connect_timeout=30
        )
        ws = await websocket_connect(request)
        hello = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        assert hello["type"] == "hello", hello
        return ws

    # --- users --------------------------------------------------------------------------

    async def chat_user(self, i: int, kind: str, phase: str, results: Results) -> None:
        rng = random.Random(f"{phase}-{i}")
        ws = await self.open_ws() if kind == "ws" else None
        try:
            for r in range(self.args.rounds):
                await asyncio.sleep(rng.uniform(0, 2 * self.args.think))
                text = question(rng, self.args.reply_words)
                conversation, msg_id = f"{phase}-{kind}-{i}", f"{phase}-{i}-{r}"
                order = ("base", "rd") if (i + r) % 2 == 0 else ("rd", "base")
                for which in order:
                    try:
                        if which == "base":
                            first, total = await self.baseline(text)
                            results.base_first.append(first)
                            results.base_total.append(total)
                        else:
                            if ws is not None:
                                first, total = await self.ws_chat(ws, conversation, msg_id, text)
                            else:
                                first, total = await self.rest_chat(conversation, msg_id, text)
                                results.rest_total.append(total)
                            results.rd_first.append(first)
                            results.rd_total.append(total)
                    except Exception as exc:  # counted and shown, never hidden
                        results.errors.append(f"{kind}/{which}: {type(exc).__name__}: {exc}"[:300])
        finally:
            if ws is not None:
                ws.close()

    async def search_user(self, i: int, phase: str, results: Results) -> None:
        rng = random.Random(f"{phase}-s{i}")
        for _ in range(self.args.rounds * 2):
            await asyncio.sleep(rng.uniform(0, 2 * self.args.think))
            try:
                results.search.append(await self.search(rng))
            except Exception as exc:
                results.errors.append(f"search: {type(exc).__name__}: {exc}"[:300])

    async def phase(self, users: int, name: str) -> tuple[Results, dict[str, Any]]:
        await self.start_index(name)
        before = (await self.health())["subsystems"]["event_loop"]
        results = Results()
        tasks = []
        for i in range(users):
            slot = i % 4
            if slot in (0, 1):
                tasks.append(self.chat_user(i, "ws", name, results))
            elif slot == 2:
                tasks.append(self.chat_user(i, "rest", name, results))
            else:
                tasks.append(self.search_user(i, name, results))
        started = time.perf_counter()
        async with asyncio.timeout(PHASE_TIMEOUT_S):
            await asyncio.gather(*tasks)
        took = time.perf_counter() - started
        after = (await self.health())["subsystems"]["event_loop"]
        index_state = await self.index_state()
        counts = [a - b for a, b in zip(after["counts"], before["counts"], strict=True)]
        loop = {
            "buckets": after["buckets_ms"],
            "counts": counts,
            "max_ms": after["max_lag_ms"],
            "took_s": took,
            "index_state_at_end": index_state,
        }
        return results, loop

    async def cold(self) -> tuple[Results, dict[str, Any]]:
        """50 chats at once, sent as soon as the server answers."""
        results = Results()
        before = (await self.health())["subsystems"]["event_loop"]
        sockets = await asyncio.gather(*(self.open_ws() for _ in range(COLD_CHATS)))
        rng = random.Random("cold")

        async def one(i: int, ws: Any) -> None:
            text = question(rng, self.args.reply_words)
            try:
                first, total = await self.ws_chat(ws, f"cold-{i}", f"cold-{i}", text)
                results.rd_first.append(first)
                results.rd_total.append(total)
            except Exception as exc:
                results.errors.append(f"cold: {type(exc).__name__}: {exc}"[:300])
            finally:
                ws.close()

        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))
        after = (await self.health())["subsystems"]["event_loop"]
        counts = [a - b for a, b in zip(after["counts"], before["counts"], strict=True)]
        return results, {
            "buckets": after["buckets_ms"],
            "counts": counts,
            "max_ms": after["max_lag_ms"],
        }


def ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 1000:.1f}"


def report(name: str, results: Results, loop: dict[str, Any]) -> None:
    b, c = loop["buckets"], loop["counts"]
    print(
        f"[{name}] loop lag p50 {lag_percentile(b, c, 0.5)} ms, p99 {lag_percentile(b, c, 0.99)}"
        f" ms, max since start {loop['max_ms']:.1f} ms ({sum(c)} samples)"
        + (
            f"; phase {loop['took_s']:.0f} s, index {loop['index_state_at_end']}"
            if "took_s" in loop
            else ""
        )
    )
    if results.base_total:
        for label, rd, base in (
            ("first chunk", results.rd_first, results.base_first),
            ("whole answer", results.rd_total, results.base_total),
        ):
            p50, p99 = pct(rd, 0.5), pct(rd, 0.99)
            b50, b99 = pct(base, 0.5), pct(base, 0.99)
            print(
                f"[{name}] {label}: RubberDuck p50 {ms(p50)} / p99 {ms(p99)} ms, fake alone p50 "
                f"{ms(b50)} / p99 {ms(b99)} ms, added p50 {ms(p50 - b50)} / p99 {ms(p99 - b99)} ms"
            )
    else:
        worst = max(results.rd_total, default=math.nan)
        print(
            f"[{name}] chats: first chunk p50 {ms(pct(results.rd_first, 0.5))} ms, whole answer "
            f"p50 {ms(pct(results.rd_total, 0.5))} / max {ms(worst)} ms"
        )
    if results.rest_total:
        rest = results.rest_total
        print(
            f"[{name}] REST chats, whole answer: p50 {ms(pct(rest, 0.5))} / max {ms(max(rest))} ms"
        )
    if results.search:
        print(
            f"[{name}] searches: {len(results.search)}, p50 {ms(pct(results.search, 0.5))} / p99 "
            f"{ms(pct(results.search, 0.99))} ms"
        )
    print(
        f"[{name}] requests: {len(results.rd_total)} RubberDuck chats "
        f"({len(results.rest_total)} REST), {len(results.base_total)} baseline, "
        f"{len(results.search)} searches; errors: {len(results.errors)}"
    )
    for line in sorted(set(results.errors))[:10]:
        print(f"    {line}")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


async def run(args: argparse.Namespace, workdir: Path) -> None:
    harness = Harness(workdir, args)
    harness.start_fake()
    try:
        ready = harness.start_server()
        print(f"server ready in {ready:.2f} s (pid {harness.server_pid()})")
        if args.cold_wait > 0:
            await asyncio.sleep(args.cold_wait)
        cold, cold_loop = await harness.cold()
        report(f"cold, 50 chats {args.cold_wait:g} s after ready", cold, cold_loop)
        for users in args.users:
            results, loop = await harness.phase(users, f"u{users}")
            report(f"{users} users", results, loop)
    finally:
        harness.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="50,200", help="comma-separated phase sizes")
    parser.add_argument("--rounds", type=int, default=3, help="chats per user per phase")
    parser.add_argument("--think", type=float, default=3.0, help="mean think time, seconds")
    parser.add_argument("--reply-words", type=int, default=20, help="words per question/reply")
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="fake s between chunks")
    parser.add_argument(
        "--asyncio-debug", action="store_true", help="server logs callbacks over 100 ms"
    )
    parser.add_argument(
        "--stall-ms", type=float, default=0, help="server logs stacks of stalls this long"
    )
    parser.add_argument(
        "--cold-wait", type=float, default=0.0, help="seconds from ready to the 50 cold chats"
    )
    parser.add_argument(
        "--litellm",
        action="store_true",
        help="stream chats through litellm (direct_openai_streaming=False), as before 2026-12",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server log)")
    args = parser.parse_args()
    args.users = [max(1, min(1000, int(u))) for u in args.users.split(",")]
    args.rounds = max(1, min(20, args.rounds))
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')} · {cpu_model()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · rounds {args.rounds}, think {args.think} s, "
        f"reply {args.reply_words} words, chunk delay {args.chunk_delay} s, "
        f"chat stream: {'litellm' if args.litellm else 'direct'}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="rd-load-"))
    try:
        asyncio.run(run(args, workdir))
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
