"""Secret redaction with RE2 patterns: group 1, when a pattern has one, is kept."""

from __future__ import annotations

from collections.abc import Sequence

import re2

__all__ = ["REPLACEMENT", "InvalidPattern", "Redactor", "compile_patterns"]

REPLACEMENT = "[REDACTED]"
# Cheap lowercase substrings; a text without any of them cannot match the default patterns.
_DEFAULT_HINTS = ("pass", "pwd", "secret", "token", "key", "auth", "bearer")


class InvalidPattern(ValueError):
    """A redaction pattern RE2 cannot compile; the message names its index."""


def compile_patterns(patterns: Sequence[str]) -> list[object]:
    """Each pattern compiled with RE2 (memory-bounded), or ``InvalidPattern`` naming the first
    that fails."""
    options = re2.Options()
    options.max_mem = 8 << 20
    options.log_errors = False
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            compiled.append(re2.compile(pattern, options))
        except re2.error as exc:
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            raise InvalidPattern(
                f"redaction_patterns[{i}] {pattern[:64]!r}: not valid RE2: {reason}"
            ) from None
    return compiled


class Redactor:
    def __init__(self, patterns: Sequence[str], hints: Sequence[str] | None = None) -> None:
        self._patterns = [(p, p.groups >= 1) for p in compile_patterns(patterns)]
        # Hints only hold for the default patterns; custom ones are always applied.
        self._hints = tuple(hints) if hints is not None else None
        self._any_hint = None
        if hints is not None:
            options = re2.Options()
            options.case_sensitive = False  # the patterns' own (?i) folding
            self._any_hint = re2.compile("|".join(re2.escape(h) for h in hints), options)

    @classmethod
    def defaults(cls, patterns: Sequence[str]) -> Redactor:
        return cls(patterns, _DEFAULT_HINTS)

    def may_match(self, texts: list[str]) -> bool:
        """False only when no pattern can match any of ``texts`` (one look at all of them)."""
        if self._any_hint is None:
            return True
        return self._any_hint.search("\n".join(texts)) is not None

    def redact(self, text: str) -> tuple[str, bool]:
        """The text with secrets replaced, and whether anything was replaced."""
        if self._hints is not None:
            lowered = text.lower()
            if not any(h in lowered for h in self._hints):
                return text, False
        changed = False
        for pattern, keep_prefix in self._patterns:
            replacement = r"\1" + REPLACEMENT if keep_prefix else REPLACEMENT
            text, count = pattern.subn(replacement, text)
            changed = changed or count > 0
        return text, changed
