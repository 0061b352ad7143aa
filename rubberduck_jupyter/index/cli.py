"""`jupyter rubberduck index` and `jupyter rubberduck search`.

Both open the index database directly. When a running Jupyter server holds it (DuckDB
allows one writer process), they go through that server's REST API instead, or say
exactly what to do. They embed with the embedder the server is configured with
(c.RubberDuckApp.index_embedder in jupyter_server_config), or `--embedder`: an index built
with one embedder is rebuilt from scratch when opened with another.

What lies above the index comes in a `CliWiring` from the top-level CLI (`cli.py`): the
redactor, the provider's embedder (`litellm:<model>`, built in `llm/`, as `app.py` hands it
to the server's index) and the server-config reader. The index imports neither `llm/` nor
`cli.py` (this module and `cli.py` used to import each other).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .embedder_config import DEFAULT_WINDOW, EmbedderConfig, EmbedderError, ProviderEmbedder
from .service import default_db_path


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return default_db_path(Path(jupyter_data_dir()), Path(args.root))


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=".", help="The project folder (default: here).")
    parser.add_argument("--db", help="The index database (default: the server's for --root).")
    parser.add_argument(
        "--embedder",
        help="minilm[:int8|:onnx|:torch], model2vec, litellm:<model> or none (keywords "
        "alone; default: the "
        "server's index_embedder, else minilm). Must match the one the index was built "
        "with, or it is rebuilt.",
    )
    parser.add_argument(
        "--embedder-api-base",
        help="With litellm:<model>: the endpoint (default: the server's index_embedder_api_base)."
        " The key comes from the server config or the provider's variable (OPENAI_API_KEY...).",
    )


@dataclass(frozen=True)
class CliWiring:
    """What the top-level CLI hands the index commands."""

    # Applied to what a provider's embedding API is sent.
    redact: Callable[[Sequence[str]], list[str]] | None = None
    # Builds the embedder of `litellm:<model>` (llm.embedder.provider_embedder).
    provider: ProviderEmbedder | None = None
    # The RubberDuckApp section of the server config (cli.load_server_config).
    server_settings: Callable[[], dict[str, Any]] | None = None


def _server_settings(wiring: CliWiring) -> dict[str, Any]:
    if wiring.server_settings is None:
        return {}
    try:
        return wiring.server_settings()
    except Exception:  # an unreadable config file: the flags and defaults still work
        return {}


def embedder_config(args: argparse.Namespace, wiring: CliWiring) -> EmbedderConfig:
    """The server's embedder settings, overridden by the command's flags."""
    server = _server_settings(wiring)
    return EmbedderConfig(
        redact=wiring.redact,
        spec=(args.embedder or server.get("index_embedder") or "minilm").strip(),
        api_base=args.embedder_api_base or server.get("index_embedder_api_base") or "",
        api_key=server.get("index_embedder_api_key") or "",
        window=int(server.get("index_embedder_window") or DEFAULT_WINDOW),
    ).validate()


def static_embedder_for(config: EmbedderConfig, wiring: CliWiring) -> Any:
    """Progressive indexing's static stand-in (model2vec), as the server wires it: for a
    local MiniLM with `index_progressive` on (the default); else None."""
    if config.kind != "minilm" or _server_settings(wiring).get("index_progressive") is False:
        return None
    from .embedder_config import default_model_cache
    from .embedder_static import Model2VecEmbedder
    from .tokens import HFTokenCounter, minilm_token_counter, minilm_tokenizer_json

    base = minilm_token_counter()
    counter = (
        base
        if config.window == base.window
        else HFTokenCounter(minilm_tokenizer_json(), window=config.window)
    )
    return Model2VecEmbedder(config.cache_dir or default_model_cache(), counter)


def _store_options(static: Any) -> dict[str, Any]:
    return {} if static is None else {"static_embedder_id": static.id, "static_dim": static.dim}


def server_for(root: Path) -> dict[str, Any] | None:
    """A running Jupyter server whose root is this folder, if any."""
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    for server in list_running_servers():
        if Path(server.get("root_dir", "")).resolve() == root.resolve():
            return server
    return None


def call_server(server: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    """One REST call to that server with its token; the decoded JSON answer."""
    url = server["url"].rstrip("/") + "/" + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {server.get('token', '')}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _locked_message(db: Path) -> str:
    return (
        f"The index {db} is in use by another process, probably a running Jupyter server "
        "with RubberDuck. Run this command from that server's root folder (so it can go "
        "through the server), use the sidebar, or stop the server."
    )


class _ProgressLine:
    """One line redrawn in place on a terminal; nothing when output is piped."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, progress: Any) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.1:
            return
        self.last = now
        width = 30
        if progress.phase == "improving":
            # The second tier: searchable already; the transformer's vectors on their way.
            total = max(progress.chunks_to_improve, 1)
            filled = int(width * progress.chunks_improved / total)
            bar = "#" * filled + "-" * (width - filled)
            sys.stderr.write(
                f"\r[{bar}] searchable; improving {progress.chunks_improved}/"
                f"{progress.chunks_to_improve} chunks   "
            )
            sys.stderr.flush()
            return
        total = max(progress.files_total, 1)
        filled = int(width * progress.files_done / total)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(
            f"\r[{bar}] {progress.files_done}/{progress.files_total} files, "
            f"{progress.chunks_embedded} chunks ({progress.phase}, {progress.tier} tier)   "
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _print_report(report: dict[str, Any]) -> None:
    print(
        f"Indexed {report['files_indexed']} file(s), {report['files_unchanged']} unchanged, "
        f"{report['files_removed']} removed, {report['skipped_total']} skipped, "
        f"{len(report['errors'])} error(s) in {report['seconds']:.1f} s "
        f"(embedding {report['seconds_embedding']:.1f} s)."
    )
    print(
        f"{report['chunks_written']} chunks, {report['tokens_embedded']} tokens embedded, "
        f"{report['truncated_chunks']} truncated."
    )
    if report.get("first_tier", "full") != "full":
        searchable = report.get("seconds_to_searchable")
        first = "keywords and static vectors" if report["first_tier"] == "static" else "keywords"
        print(
            f"Progressive: searchable after {searchable or 0:.1f} s ({first}), "
            f"{report.get('chunks_improved', 0)} chunks given the full model's vectors after."
        )
    if report.get("static_error"):
        print(f"  the static embedder failed: {report['static_error']}")
    for error in report["errors"]:
        print(f"  error: {error['path']}: {error['reason']}")
    if report.get("cancelled"):
        print("Stopped before the end; run again to finish.")


def index_command(argv: list[str], wiring: CliWiring | None = None) -> int:
    wiring = wiring or CliWiring()
    parser = argparse.ArgumentParser(
        prog="jupyter rubberduck index", description="Index a project folder for search."
    )
    parser.add_argument("paths", nargs="*", help="Files or folders inside --root (default: all).")
    _add_common(parser)
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    db = _db_path(args)
    subpaths = [Path(p).resolve() for p in args.paths]
    outside = [str(p) for p in subpaths if not p.is_relative_to(root)]
    if outside:
        print(f"Not inside the root {root}: {', '.join(outside)}", file=sys.stderr)
        return 2

    from .store import IndexLockedError

    try:
        config = embedder_config(args, wiring)
        return _index_locally(root, db, subpaths, config, wiring.provider, wiring)
    except EmbedderError as exc:
        print(exc, file=sys.stderr)
        return 1
    except IndexLockedError:
        server = server_for(root)
        if server is None:
            print(_locked_message(db), file=sys.stderr)
            return 1
        rel = [p.relative_to(root).as_posix() for p in subpaths]
        return _index_through(server, rel)


def _print_tiers(tiers: dict[str, int], static: Any) -> None:
    """Which tier the chunks are in (all "full" after a run that was not stopped)."""
    keywords = tiers["chunks"] - tiers["full"] - tiers["static"]
    print(
        f"Tiers: {tiers['full']} chunks with the full model's vectors, {tiers['static']} "
        f"with static vectors only, {keywords} with keywords alone."
    )
    why = static.unavailable() if static is not None else None
    if why is not None:
        print(
            f"  (the static embedder was not used: {why}; a Jupyter server with RubberDuck "
            "distils it once in the background after its first index run)"
        )


def _index_locally(
    root: Path,
    db: Path,
    subpaths: list[Path],
    config: EmbedderConfig,
    provider: ProviderEmbedder | None = None,
    wiring: CliWiring | None = None,
) -> int:
    from .embedder_config import build_embedder
    from .indexer import Indexer
    from .store import IndexStore

    embedder = build_embedder(config, provider)
    static = static_embedder_for(config, wiring or CliWiring())
    db.parent.mkdir(parents=True, exist_ok=True)
    with IndexStore(
        db, dim=embedder.dim, embedder_id=embedder.id, **_store_options(static)
    ) as store:
        progress = _ProgressLine()
        indexer = Indexer(
            store,
            embedder,
            progress=progress,
            progressive=static is not None,
            static_embedder=static if static is not None and static.unavailable() is None else None,
        )
        try:
            report = indexer.index_folder(root, subpaths)
        except KeyboardInterrupt:
            indexer.cancel()
            raise
        finally:
            progress.close()
        tiers = store.tier_counts()
    print(f"Index: {db} (embedder {embedder.id})")
    _print_report(report.to_json())
    _print_tiers(tiers, static)
    return 0


def _index_through(server: dict[str, Any], rel_paths: list[str]) -> int:
    print(f"The running server at {server['url']} holds the index; asking it to index.")
    try:
        call_server(server, "POST", "rubberduck/api/index", {"paths": rel_paths})
        while True:
            status = call_server(server, "GET", "rubberduck/api/index")
            if status["state"] != "indexing":
                break
            progress = status.get("progress") or {}
            if progress.get("phase") == "improving":
                sys.stderr.write(
                    f"\rsearchable; improving {progress.get('chunks_improved', 0)}/"
                    f"{progress.get('chunks_to_improve', 0)} chunks   "
                )
            else:
                sys.stderr.write(
                    f"\r{progress.get('files_done', 0)}/{progress.get('files_total', 0)} files   "
                )
            time.sleep(0.5)
    except urllib.error.HTTPError as exc:
        print(f"The server refused: HTTP {exc.code} {exc.read().decode()[:300]}", file=sys.stderr)
        return 1
    sys.stderr.write("\n")
    if status["state"] == "error":
        print(f"Indexing failed: {status['error']}", file=sys.stderr)
        return 1
    _print_report(status["last_report"])
    tiers = status.get("tiers") or {}
    if tiers:
        print(
            f"Tiers: {tiers['full']['chunks']} chunks with the full model's vectors, "
            f"{tiers['static']['chunks']} with static vectors only, "
            f"{tiers['keywords']['chunks']} with keywords alone (quality: {status['quality']})."
        )
    return 0


def search_command(argv: list[str], wiring: CliWiring | None = None) -> int:
    wiring = wiring or CliWiring()
    parser = argparse.ArgumentParser(
        prog="jupyter rubberduck search", description="Search the project index."
    )
    parser.add_argument("query")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="One JSON object per hit.")
    parser.add_argument("--path", help="Only paths matching this glob (e.g. 'src/**/*.py').")
    parser.add_argument("--kind", action="append", help="Only chunks of this kind (repeatable).")
    parser.add_argument("--mode", choices=["hybrid", "vector", "bm25"], default="hybrid")
    _add_common(parser)
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    db = _db_path(args)
    if not db.exists():
        print(f"No index at {db}. Build one first: jupyter rubberduck index", file=sys.stderr)
        return 1

    from .store import IndexLockedError, IndexMismatchError

    try:
        hits = _search_locally(db, args, wiring)
    except (EmbedderError, IndexMismatchError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except IndexLockedError:
        server = server_for(root)
        if server is None:
            print(_locked_message(db), file=sys.stderr)
            return 1
        params = {"q": args.query, "top_k": args.top_k, "mode": args.mode}
        if args.path:
            params["path"] = args.path
        query = urllib.parse.urlencode(params) + "".join(
            f"&kind={urllib.parse.quote(k)}" for k in args.kind or []
        )
        hits = call_server(server, "GET", f"rubberduck/api/index/search?{query}")["hits"]
    for rank, hit in enumerate(hits, 1):
        if args.json:
            print(json.dumps(hit))
            continue
        where = (
            f"cell {hit['cell']}"
            if "cell" in hit
            else f"lines {hit['start_line']}-{hit['end_line']}"
        )
        title = f"  [{hit['title']}]" if hit.get("title") else ""
        print(f"{rank:2d}. {hit['path']} ({where}, {hit['kind']}) score {hit['score']:.4f}{title}")
        preview = " ".join(hit["text"].split())[:160]
        print(f"    {preview}")
    return 0


def _search_locally(
    db: Path,
    args: argparse.Namespace,
    wiring: CliWiring,
) -> list[dict[str, Any]]:
    from .embedder_config import build_embedder
    from .search import HybridSearcher
    from .store import IndexStore

    config = embedder_config(args, wiring)
    embedder = build_embedder(config, wiring.provider)
    static = static_embedder_for(config, wiring)
    # A search never clears an index built with another embedder; it says so instead.
    with IndexStore(
        db,
        dim=embedder.dim,
        embedder_id=embedder.id,
        clear_mismatch=False,
        **_store_options(static),
    ) as store:
        # Chunks a stopped run left with static vectors only are ranked by their own model.
        searcher = HybridSearcher(
            store, embedder.embed_query, static.embed_query if static is not None else None
        )
        hits = searcher.search(
            args.query, args.top_k, mode=args.mode, path_glob=args.path, kinds=args.kind
        )
        return [hit.to_json() for hit in hits]
