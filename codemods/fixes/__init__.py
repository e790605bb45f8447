"""The fixes: the registry, one module a fix, and what their planners and transformers share."""
