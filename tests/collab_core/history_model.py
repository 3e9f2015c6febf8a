"""A naive model of the attribution index, for the property tests of collab_core.history.

One object per character ever inserted, in document order, written apart
from the index and as plainly as possible (O(n) per op): who inserted each
character, which changes deleted it, the rev that last changed its
visibility.  Undo and redo follow the rules of the design as stated (the
user's most recent active ordinary change; the changes they undid since
their last ordinary op; a toggle that would change nothing is passed over),
computed by scanning everything instead of keeping stacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collab_core import ops
from collab_core.ops import Op


@dataclass
class Char:
    c: str
    ins: int  # the change that inserted it
    vr: int  # the rev that last changed its visibility
    dels: set[int] = field(default_factory=set)


@dataclass
class LogEntry:
    rev: int
    op: Op
    user: str
    time: float
    change_rev: int | None  # ordinary ops
    toggles: int | None  # toggle ops
    kind: str = "edit"  # or "undo", "redo"


class Model:
    def __init__(self, text: str, user: str, time: float) -> None:
        self.chars = [Char(c, 0, 0) for c in text]
        self.created = (user, time)
        self.user_of: dict[int, str] = {0: user}  # change -> user (ordinary changes only)
        self.active: dict[int, bool] = {0: True}
        self.redo_list: dict[str, list[int]] = {}
        self.log: list[LogEntry] = []
        self.texts = [text]  # the text at every rev, by applying the ops in order

    # -- visibility ---------------------------------------------------------------------------

    def is_active(self, c: int, state: dict[int, bool] | None = None) -> bool:
        if state and c in state:
            return state[c]
        return self.active[c]

    def visible(self, ch: Char, state: dict[int, bool] | None = None) -> bool:
        return self.is_active(ch.ins, state) and not any(self.is_active(d, state) for d in ch.dels)

    def text(self) -> str:
        return "".join(ch.c for ch in self.chars if self.visible(ch))

    def _index_of_visible(self, p: int) -> int:
        seen = 0
        for i, ch in enumerate(self.chars):
            if self.visible(ch):
                if seen == p:
                    return i
                seen += 1
        raise IndexError(p)

    # -- ops ------------------------------------------------------------------------------------

    def apply_ordinary(self, rev: int, op: Op, user: str, time: float, change: int) -> None:
        assert rev == len(self.log) + 1
        if change == rev:
            self.user_of[rev] = user
            self.active[rev] = True
        else:
            assert self.user_of[change] == user and self.active[change]
        self.redo_list[user] = []
        pos = 0
        for comp in op:
            if isinstance(comp, str):
                at = 0 if pos == 0 else self._index_of_visible(pos - 1) + 1
                self.chars[at:at] = [Char(c, change, rev) for c in comp]
                pos += len(comp)
            elif comp > 0:
                pos += comp
            else:
                for _ in range(-comp):
                    ch = self.chars[self._index_of_visible(pos)]
                    ch.dels.add(change)
                    ch.vr = rev
        self.log.append(LogEntry(rev, op, user, time, change, None))
        self.texts.append(ops.apply(self.texts[-1], op))

    def diff(self, state: dict[int, bool]) -> Op:
        """The op from the visible text now to the one with *state* overriding."""
        out: Op = []
        for ch in self.chars:
            before, after = self.visible(ch), self.visible(ch, state)
            if before and after:
                out.append(1)
            elif before:
                out.append(-1)
            elif after:
                out.append(ch.c)
        return ops.normalize(out)

    def plan(self, user: str, *, undo: bool) -> tuple[int, Op, list[int]] | None:
        if undo:
            candidates = sorted(
                (c for c, u in self.user_of.items() if u == user and c != 0 and self.active[c]),
                reverse=True,
            )
        else:
            candidates = list(reversed(self.redo_list.get(user, [])))
        state: dict[int, bool] = {}
        skipped = []
        for c in candidates:
            state[c] = not undo
            op = self.diff(state)
            if op:
                return c, op, skipped
            skipped.append(c)
        return None

    def apply_toggle(self, rev: int, op: Op, user: str, time: float, change: int) -> None:
        assert rev == len(self.log) + 1
        undo = self.active[change]
        plan = self.plan(user, undo=undo)
        assert plan is not None and plan[0] == change and plan[1] == ops.normalize(op)
        before = [self.visible(ch) for ch in self.chars]
        for c in [*plan[2], change]:
            self.active[c] = not undo
            if undo:
                self.redo_list.setdefault(user, []).append(c)
            else:
                assert self.redo_list[user].pop() == c
        for ch, was in zip(self.chars, before, strict=True):
            if self.visible(ch) != was:
                ch.vr = rev
        self.log.append(LogEntry(rev, op, user, time, None, change, "undo" if undo else "redo"))
        self.texts.append(ops.apply(self.texts[-1], op))

    # -- what the index must answer -----------------------------------------------------------

    def rev_user_time(self, rev: int) -> tuple[str, float]:
        if rev == 0:
            return self.created
        e = self.log[rev - 1]
        return e.user, e.time

    def blame(self) -> list[tuple[int, str, float]]:
        """Per line, straight from the definition in DocumentHistory.blame."""
        spans: list[list[Char]] = [[]]
        for ch in self.chars:
            spans[-1].append(ch)
            if self.visible(ch) and ch.c == "\n":
                spans.append([])
        out = []
        prev_newline = -1
        for span in spans:
            shown = [i for i, ch in enumerate(span) if self.visible(ch)]
            first = shown[0] if shown else len(span)
            lead = span[:first]
            cut = max((i + 1 for i, ch in enumerate(lead) if ch.c == "\n"), default=0)
            counted = lead[cut:] + span[first:]
            revs = [ch.vr for ch in counted]
            if not shown:
                revs.append(prev_newline)
            rev = max(revs, default=-1)
            if rev < 0:
                out.append((0, "", self.created[1]))
            else:
                out.append((rev, *self.rev_user_time(rev)))
            if shown and span[shown[-1]].c == "\n":
                prev_newline = span[shown[-1]].vr
        return out

    def history(self) -> list[dict[str, object]]:
        """Every change and toggle, newest first by its last rev, from the log and the chars."""
        entries: dict[int, dict[str, object]] = {}
        for e in self.log:
            text_before = self.texts[e.rev - 1]
            lo = e.op[0] if e.op and isinstance(e.op[0], int) and e.op[0] > 0 else 0
            if e.toggles is not None:
                entries[e.rev] = {
                    "rev": e.rev,
                    "first_rev": e.rev,
                    "user": e.user,
                    "time": e.time,
                    "inserted": sum(len(c) for c in e.op if isinstance(c, str)),
                    "deleted": -sum(c for c in e.op if isinstance(c, int) and c < 0),
                    "line": text_before[:lo].count("\n"),
                    "kind": e.kind,
                    "toggles": e.toggles,
                }
                continue
            assert e.change_rev is not None
            if e.change_rev == e.rev:
                entries[e.rev] = {
                    "first_rev": e.rev,
                    "user": e.user,
                    "line": text_before[:lo].count("\n") if e.op else 0,
                    "kind": "edit",
                    "toggles": None,
                }
            entry = entries[e.change_rev]
            entry["rev"] = e.rev
            entry["time"] = e.time
        for c, entry in entries.items():
            if entry["kind"] == "edit":
                entry["inserted"] = sum(1 for ch in self.chars if ch.ins == c and c not in ch.dels)
                entry["deleted"] = sum(1 for ch in self.chars if c in ch.dels and ch.ins != c)
        return sorted(entries.values(), key=lambda e: -int(e["rev"]))  # type: ignore[call-overload]
