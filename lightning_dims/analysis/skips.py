"""A fit, run or value the analysis left out, and why, so the report can say so."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Skip"]


@dataclass(frozen=True)
class Skip:
    """``what`` kind of thing (``run``, ``exponent``, ``fig2 slope``, ...) for ``scope`` was left out because ``why``."""

    what: str
    scope: str
    why: str

    def __str__(self) -> str:
        return f"{self.what} [{self.scope}]: {self.why}"
