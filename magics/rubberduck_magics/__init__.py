"""%%duck: the whole RubberDuck assistant from any IPython kernel.

Load with `%load_ext rubberduck_magics`; `%duck help` lists what it does. Only the standard
library and IPython are used, so this package installs into any kernel environment. The
server that started the kernel exports RUBBERDUCK_SERVER_URL and a scoped
RUBBERDUCK_KERNEL_TOKEN; elsewhere, run
`%duck connect URL --token TOKEN` (or set RUBBERDUCK_SERVER_URL and RUBBERDUCK_TOKEN).
"""

from __future__ import annotations

from typing import Any

from .client import DuckClient, DuckError, ServerAddress

__all__ = ["DuckClient", "DuckError", "ServerAddress", "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    from .magic import DuckMagics

    ipython.register_magics(DuckMagics)
