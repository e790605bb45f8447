"""The driver moved to :mod:`fixer.verify.driver`; this name stays for ``fixer.soak`` until it moves to ``bench/``."""

from .verify.driver import (  # noqa: F401
    SocketIOServer,
    call_hook,
    collection_sizes,
    hook_events,
    import_handler,
    observe_handle,
    project_folders,
    raise_to,
)
