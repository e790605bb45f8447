"""Undefined names, as pyflakes sees them: what a patch must never introduce."""

from pyflakes import api, messages, reporter


class _Collect(reporter.Reporter):
    def __init__(self):
        self.names = set()

    def flake(self, message):
        if isinstance(message, messages.UndefinedName):
            self.names.add(message.message_args[0])

    def unexpectedError(self, filename, message):
        raise AssertionError(f"pyflakes failed on {filename}: {message}")

    def syntaxError(self, filename, message, line, offset, text):
        raise AssertionError(f"{filename}:{line}: {message}")


def undefined_names(source: bytes) -> set:
    collector = _Collect()
    api.check(source.decode("utf-8-sig"), "hook_handler.py", collector)
    return collector.names
