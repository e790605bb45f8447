"""The install model: what an installed claude-mpm looks like, and how to find the ones Claude Code runs."""
