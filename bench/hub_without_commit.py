"""The hub with its commit taken out: a baseline of scenario 13, never a mode of the hub.

    python -m bench.hub_without_commit [pairls-hub's arguments]   # from the repository's root

Every group commit is taken as done at once (``Store._run_append`` returns its documents
without sending the statement), so no op reaches PostgreSQL and no PostgreSQL answer wakes the
hub.  Everything else is the hub as it runs: the frames, the checks, the sequencer, the store's
queue and its committer tasks, the acks and the broadcasts.  Beside the real hub in one run, it
shows how much of the hub's CPU and latency per edit is the commit and how much the rest.
"""

from __future__ import annotations

import sys

from collab_server import store
from collab_server.cli import main


async def _taken_as_committed(self: store.Store, group: list[store._Append], held: object) -> set[int]:
    self.stats.transactions += 1
    return {item.doc_id for item in group}


store.Store._run_append = _taken_as_committed  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
