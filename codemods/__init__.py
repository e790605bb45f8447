"""The five LibCST fixes, and what they share.

Importing this package imports no libcst: ``check`` uses ``shape`` and ``plan`` (standard
library only); ``engine.fix_source`` loads the transformers when there is work to do.
"""
