"""The driver moved to :mod:`fixer.verify.driver`; this name stays for ``fixer.soak`` and ``bench.deploy``
until they import it from there (``fixer.soak`` moves to ``bench/``)."""

from .verify.driver import (  # noqa: F401
    NO_SERVER,
    SERVER_UP,
    WEDGED,
    PerProcessRun,
    SocketIOServer,
    call_hook,
    collection_sizes,
    hook_events,
    import_handler,
    observe_handle,
    project_folders,
    raise_to,
    run_per_process,
)
