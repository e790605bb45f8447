"""The numbers the injected code uses: the limits and the pool size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Values written into the patched handler; the defaults match claude-mpm's own later fix."""

    max_delegation_tracking: int = 200
    max_prompt_tracking: int = 100
    max_cache_age_seconds: int = 300
    cleanup_interval_events: int = 100
    max_connections: int = 3

    def limit(self, constant: str) -> int:
        """The value of a limit constant such as ``MAX_PROMPT_TRACKING``."""
        value: int = getattr(self, constant.lower())
        return value
