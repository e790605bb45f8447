"""The fixes, one package each (record, steps, planner; its LibCST transformer in ``transform``), and the registry."""
