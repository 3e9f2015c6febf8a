"""``.gitignore`` patterns, matched the way git matches them (sans-I/O).

:class:`IgnoreFile` is one file's rules, relative to the folder it sits in;
:func:`ignored` decides for a path given the files that apply to it, root
first.  The rules (see ``gitignore(5)``):

* blank lines and ``#`` comments are skipped; ``\\#`` and ``\\!`` are literal;
  trailing spaces go unless escaped;
* ``!pattern`` re-includes what an earlier pattern excluded, but nothing
  inside an excluded folder comes back;
* a pattern with a ``/`` before its end is anchored to the file's folder,
  otherwise it matches a name at any depth; a trailing ``/`` matches folders
  only;
* ``*``, ``?`` and ``[...]`` never match ``/``; ``**/`` at the start, ``/**``
  at the end and ``/**/`` in the middle span folders;
* a later rule wins over an earlier one, a deeper file over a shallower one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["IgnoreFile", "Rule", "ignored"]


@dataclass(frozen=True, slots=True)
class Rule:
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool


@dataclass(frozen=True, slots=True)
class IgnoreFile:
    #: the folder the file sits in, relative to the root ("" for the root), ``/``-separated
    base: str
    rules: tuple[Rule, ...]

    @classmethod
    def parse(cls, text: str, base: str = "") -> IgnoreFile:
        rules = []
        for line in text.splitlines():
            rule = _compile(line)
            if rule is not None:
                rules.append(rule)
        return cls(base.strip("/"), tuple(rules))

    def decide(self, path: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included, None: no rule of this file matches *path*
        (relative to the root)."""
        if self.base:
            if not path.startswith(self.base + "/"):
                return None
            path = path[len(self.base) + 1 :]
        for rule in reversed(self.rules):
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(path):
                return not rule.negated
        return None


def ignored(files: Sequence[IgnoreFile], path: str, is_dir: bool = False) -> bool:
    """Is *path* (relative to the root, ``/``-separated) ignored by *files* (root first)?

    A path inside an ignored folder is ignored whatever later rules say."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        last = i == len(parts)
        if _decide(files, sub, is_dir if last else True):
            return True
    return False


def _decide(files: Iterable[IgnoreFile], path: str, is_dir: bool) -> bool:
    decision: bool | None = None
    for f in files:
        d = f.decide(path, is_dir)
        if d is not None:
            decision = d
    return bool(decision)


def _compile(line: str) -> Rule | None:
    if not line or line.startswith("#"):
        return None
    # trailing spaces go, unless the last one is escaped
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    if not line:
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    if dir_only:
        line = line[:-1]
    if not line:
        return None
    anchored = "/" in line
    line = line.removeprefix("/")
    try:
        body = _translate(line, anchored)
        regex = re.compile(body if anchored else "(?:.*/)?" + body, re.DOTALL)
    except re.error:
        return None  # git ignores a pattern it cannot read; so do we
    return Rule(regex, negated, dir_only)


def _translate(pattern: str, anchored: bool) -> str:
    # an unanchored pattern matches a name, where "**" is just "*"
    literal = next((k for k, ch in enumerate(pattern) if ch in "*?[\\"), len(pattern)) if anchored else -1
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            stars = j - i
            # git strips the pattern's literal head before matching, so a "**" right
            # after it counts as at the start ("a**/b" matches "ab" and "a/x/b")
            at_start = anchored and (i == 0 or pattern[i - 1] == "/" or i == literal)
            if stars >= 2 and at_start and j < n and pattern[j] == "/":
                out.append("(?:.*/)?")  # zero or more folders
                i = j + 1
                continue
            if stars >= 2 and at_start and j == n:
                out.append(".*")  # "foo/**": everything inside; "**" alone: everything
                i = j
                continue
            out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
                i += 1
                continue
            inner = pattern[i + 1 : j]
            negate = inner[:1] in ("!", "^")
            if negate:
                inner = inner[1:]
            inner = inner.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[{'^/' if negate else ''}{inner}]" if negate else f"(?!/)[{inner}]")
            i = j + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)
