"""rubberduck-hello: an example RubberDuck plugin package (see README.md)."""
