"""`pairls-lsp`: the language server (built in the next step; see README)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    sys.stderr.write("pairls-lsp: the language server is not built yet\n")
    return 2
