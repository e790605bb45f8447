"""fix-memory-leaks: patch claude-mpm's leaking hook handler with LibCST codemods."""

__version__ = "0.3.0"
