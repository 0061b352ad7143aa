"""The project index: chunkers, embedder, DuckDB store, hybrid search and the indexer."""
