"""The patch pipeline: config, one file through check/apply/restore, safe writing, the one Report."""
