"""Soak and leak benchmarks: real claude-mpm hook handlers against a real Socket.IO server."""
