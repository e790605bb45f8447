"""Benchmarks that print figures: tool speed, and real claude-mpm hook handlers against a real Socket.IO server."""

from __future__ import annotations


def table(headers: list[str], rows: list[list]) -> str:
    """A plain-text table, columns right-aligned, for the benchmarks' summaries."""
    cells = [headers, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
