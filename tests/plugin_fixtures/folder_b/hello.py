"""Same basename as folder_a/hello.py, another plugin version."""

from rubberduck_jupyter.plugins import plugin

spec = plugin(name="hello", version="2.0", api=">=1,<2")
WHERE = "b"
