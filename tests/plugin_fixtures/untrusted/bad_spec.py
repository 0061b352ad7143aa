"""An invalid spec: a misspelt permission."""

from rubberduck_jupyter.plugins import plugin

spec = plugin(name="bad_spec", version="1.0", api=">=1,<2", permissions=["netwrk"])
