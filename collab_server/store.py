"""The PostgreSQL store: rooms, invites, members, documents, the op log (asyncpg).

PostgreSQL is the system of record (docs/architecture.md, decision 3): the hub
acknowledges an op only after :meth:`Store.append` returned, i.e. after
COMMIT.  Several hubs may share one database (decision 5): committing is a
compare-and-set on ``documents.rev``, and every commit sends ``NOTIFY
pairls_ops`` with ``"<hub_id> <doc_id> <new_rev>"`` so the other hubs read
the new ops back with :meth:`Store.ops_since` (unless no other hub is
registered: see :meth:`Store.register_hub`).

Group commit: concurrent :meth:`Store.append` calls (for different
documents) are queued; a committer takes everything queued and commits it in
one single-statement transaction (one round trip, one WAL flush), with up to
``commit_concurrency`` such transactions in flight on separate connections.
A group holds at most :data:`GROUP_BYTES` of ops (one append larger than
that goes alone), so a keystroke in one document is not committed inside a
megabyte of another's (a run's output, a paste): it goes in the next group,
on the other connection.

Text limits: PostgreSQL ``text`` cannot hold NUL (U+0000), and strings with
lone surrogates (U+D800..U+DFFF) are not valid UTF-8.  Documents containing
either cannot be stored, so :meth:`Store.append`, :meth:`Store.create_document`
and :meth:`Store.save_snapshot` raise :class:`StoreError` for them and write
nothing.  The hub should refuse such input up front (see :func:`storable`).

Rooms: the owner's controls (removing a participant, changing a role,
rotating the invites, deleting the room) are written here first, each with
``NOTIFY pairls_rooms`` ``"<hub_id> <room_id> <event>"``; every hub then
reads the room back with :meth:`Store.room_states` and brings its
connections in line (``authority.reconcile``).  :meth:`Store.delete_room`
and :meth:`Store.delete_idle_rooms` delete a room with everything in it.

Participants: each hub writes a row per connection in a room (``participants``,
with the hub's id) and beats in ``hubs``; joins, departures and role changes,
cursors and new documents go to the other hubs as ``NOTIFY pairls_peers``
(``roster.py`` has the format).  :meth:`Store.enter_room` records a
participant and reads who else is in the room, :meth:`Store.heartbeat` and
:meth:`Store.remote_participants` let each hub drop the participants of a
hub that stopped beating.

Errors: every database failure surfaces as :class:`StoreError` (the asyncpg
exception is chained as ``__cause__``); a lost compare-and-set as
:class:`RevisionConflict`, or :class:`DocumentGone` if the document was
deleted meanwhile.  Document text, ops and secrets are never logged.

Observing: :attr:`Store.stats` counts what happened; callbacks added with
:meth:`Store.add_commit_observer` get the duration and size of every
group-commit transaction (the hub's ``/metrics`` histograms); :meth:`Store.ping`
is the health check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import NamedTuple

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import orjson

from collab_core import ops, wire
from collab_core.errors import DocumentGone, InvalidState, QuotaExceeded, RevisionConflict, StoreError

from . import roster
from .authority import RoomState, Seat
from .document import ClientId, Rev, Sequenced

__all__ = [
    "Beat",
    "CommitObserver",
    "DocumentOrigin",
    "DocumentRecord",
    "LoadedDocument",
    "Revision",
    "RoomInfo",
    "Store",
    "StoreStats",
    "open_store",
    "parse_ops_notification",
    "storable",
]

logger = logging.getLogger(__name__)

CHANNEL = "pairls_ops"
#: a hub's id goes in every notification it sends (PostgreSQL takes payloads under 8,000 bytes)
MAX_HUB_ID_BYTES = 256
#: notifications that a room changed: "<hub_id> <room_id> <event>", event in ROOM_EVENTS
ROOMS_CHANNEL = "pairls_rooms"
ROOM_EVENTS = ("removed", "role", "rotated", "deleted:owner", "deleted:operator", "deleted:idle")
ROLES = ("owner", "editor", "viewer")
#: pg_advisory_lock key serialising migrations between hubs ("pairls" in ASCII)
MIGRATION_LOCK = 0x7061_6972_6C73
# Transaction-level advisory locks (the two-int key space, apart from the one
# above) that make counting and inserting one step for the quotas: room
# creation hub-wide, document creation per room (keyed by hashtext(room id)).
QUOTA_LOCK = 0x7061_6972
ROOMS_KEY = 1


@dataclass(frozen=True, slots=True)
class JoinFacts:
    """A room's invites and what the owner decided about one client id, read for a ``join``."""

    #: (role, SHA-256 digest of the secret) of every invite of the room; empty if no such room
    invites: tuple[tuple[str, bytes], ...]
    #: the role the owner gave this client id, if they gave one
    assigned_role: str | None
    #: the client id joined this room before
    member: bool
    #: the owner removed this client id
    removed: bool
    #: the owner removed someone who had joined with this secret
    withdrawn: bool


class DocumentRecord(NamedTuple):
    id: int
    room_id: str
    path: str
    rev: int


class LoadedDocument(NamedTuple):
    text: str
    rev: int
    #: the last ops up to ``rev``, oldest first
    history: list[Sequenced]


class DocumentOrigin(NamedTuple):
    """Revision 0 of a document's history."""

    text: str
    #: the user who created it ('' if unknown: created before migration 0003)
    created_by: str
    #: when, in seconds since the epoch
    time: float


class Revision(NamedTuple):
    """The text at a revision, in parts: a snapshot and the ops after it (apply them in order)."""

    snapshot: str
    snapshot_rev: int
    ops: list[ops.Op]


class Beat(NamedTuple):
    """What a heartbeat found."""

    #: False if this hub's row was gone (taken for dead, or the database crashed and emptied
    #: the table): then its participants must be written again
    alive: bool
    #: another hub beat within the expiry (True when unknown: this hub's row was gone), so its
    #: participants may be in the table; False: a read of the table would find nobody
    others: bool


class RoomInfo(NamedTuple):
    """A room as ``pairls-hub rooms list`` shows it: never a secret or a document's text."""

    id: str
    name: str
    documents: int
    #: bytes of text stored for it: its snapshots and its op log
    bytes: int
    created_at: datetime
    last_active: datetime


#: ``observer(seconds, ops)`` after each group-commit transaction that PostgreSQL answered
CommitObserver = Callable[[float, int], None]


@dataclass
class StoreStats:
    """Counters for tests and metrics (the hub's ``/metrics`` reads them)."""

    #: group-commit transactions run (each holds one or more appends)
    transactions: int = 0
    #: append() calls committed
    appends: int = 0
    #: ops committed
    ops: int = 0
    #: appends refused with RevisionConflict
    conflicts: int = 0
    #: groups that failed as a whole and were retried document by document
    split_retries: int = 0
    #: failed attempts to re-open the LISTEN connection after losing it
    listener_retries: int = 0
    #: ``pairls_ops`` and ``pairls_rooms`` notifications dropped because they did not parse
    malformed_notifications: int = 0


def storable(text: str) -> bool:
    """True if *text* can be stored: no NUL and no lone surrogate (what the hub refuses at the
    edge, :func:`collab_core.wire.bad_text`)."""
    return not wire.bad_text(text)


def parse_ops_notification(payload: str) -> tuple[str, int, int]:
    """``"<hub_id> <doc_id> <rev>"`` (a ``pairls_ops`` payload) as ``(hub_id, doc_id, rev)``;
    ValueError for anything else."""
    hub_id, doc_id, rev = payload.split(" ")
    if not hub_id:
        raise ValueError("no hub id")
    return hub_id, int(doc_id), int(rev)


# -- SQL ---------------------------------------------------------------------


def _append_statement(cas: str, rows: str, hub_id: str) -> str:
    """A group-commit statement: the compare-and-set *cas* (``RETURNING d.id, d.rev``), the op
    rows of *rows* (a ``SELECT`` of the ``ops`` columns, through ``cas``), the notification, and
    the result; *hub_id* is the committing hub's parameter."""
    return f"""
WITH cas AS ({cas}
), ins AS (
    INSERT INTO ops (document_id, rev, author, client_id, client_seq, op,
                     user_id, change_rev, toggles, created_at)
    {rows}
    RETURNING 1
), notified AS (
    SELECT pg_notify('pairls_ops', {hub_id}::text || ' ' || cas.id || ' ' || cas.rev) FROM cas
    WHERE EXISTS (SELECT 1 FROM hubs WHERE hubs.id <> {hub_id}::text)
)
SELECT array(SELECT id FROM cas) AS committed,
       (SELECT count(*) FROM ins) AS inserted,
       (SELECT count(*) FROM notified) AS notified
"""


# One statement, hence one implicit transaction and one round trip, for a
# whole group of appends: the compare-and-set on every document, the ops of
# those whose CAS matched, and one NOTIFY per committed document if another
# hub is registered (``hubs``): a hub alone on its database has nobody to tell,
# and a notifying transaction holds PostgreSQL's notification lock through its
# WAL flush (docs/scaling.md).  Documents whose CAS failed (another hub moved
# their head) are absent from the result and get nothing written.
#
# The group comes as two JSON arrays of rows (written by orjson, in C): $1 the
# documents' ``[id, expected, new_rev]``, $2 the ops' ``[document_id, rev,
# author, client_id, client_seq, op, user_id, change_rev, toggles, micros]``.
# Thirteen array parameters, as before, made asyncpg check each array and each
# element in Python: about 4 us of the hub's CPU per op in a group of 24, for
# the same work in PostgreSQL (docs/benchmarks.md, "The group commit's rows as
# JSON").
_APPEND_SQL = _append_statement(
    cas="""
    UPDATE documents AS d SET rev = (b->>2)::bigint
    FROM jsonb_array_elements($1::jsonb) AS b
    WHERE d.id = (b->>0)::bigint AND d.rev = (b->>1)::bigint
    RETURNING d.id, d.rev""",
    rows="""SELECT (o->>0)::bigint, (o->>1)::bigint, o->>2, o->>3, (o->>4)::bigint, o->>5,
           o->>6, (o->>7)::bigint, (o->>8)::bigint,
           coalesce(timestamptz 'epoch' + (o->>9)::bigint * interval '1 microsecond', now())
    FROM jsonb_array_elements($2::jsonb) AS o
    JOIN cas ON cas.id = (o->>0)::bigint""",
    hub_id="$3",
)

# The same for the commonest group at typing rates: one document, one op.  Scalar
# parameters instead of two one-row JSON documents (and of the thirteen one-element
# arrays before them, which cost the hub about 18 us more CPU per commit than these
# scalars: docs/benchmarks.md, "A lone op's commit with scalar parameters").
# Same rows written, same notification, same result as _APPEND_SQL for that group.
_APPEND_ONE_SQL = _append_statement(
    cas="""
    UPDATE documents AS d SET rev = $3::bigint
    WHERE d.id = $1::bigint AND d.rev = $2::bigint
    RETURNING d.id, d.rev""",
    rows="""SELECT cas.id, cas.rev, $4::text, $5::text, $6::bigint, $7::text,
           $8::text, $9::bigint, $10::bigint,
           coalesce(timestamptz 'epoch' + $11::bigint * interval '1 microsecond', now())
    FROM cas""",
    hub_id="$12",
)

# created_at as whole microseconds since the epoch: the float the hub had when it
# sequenced the op (Sequenced.time) is exactly that many microseconds
_OPS_COLUMNS = (
    "rev, op, client_id, client_seq, author, user_id, "
    "(extract(epoch FROM created_at) * 1000000)::bigint, change_rev, toggles"
)


#: seconds a committer out of work keeps its connection, waiting for more
COMMITTER_LINGER = 1.0

#: the ops' encoded size one group commit takes at most (unless one append alone is larger)
GROUP_BYTES = 128 * 1024


class _Held:
    """The connection one committer holds (none until its first transaction, or after a failure)."""

    __slots__ = ("conn",)

    def __init__(self) -> None:
        self.conn: asyncpg.Connection | None = None

    async def drop(self, pool: asyncpg.Pool) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await pool.release(conn)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def _json_rows(rows: list[tuple[int, int, int]] | list[tuple[object, ...]]) -> str:
    """*rows* as one JSON array of arrays, a parameter of :data:`_APPEND_SQL`.

    StoreError for a value JSON cannot carry (a lone surrogate, an integer past 64
    bits): the hub refuses those at the edge, and asyncpg would refuse them too.
    """
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:
        # the message would quote the value: not chained
        raise StoreError("append failed: a value is not valid text") from None


@dataclass(eq=False)
class _Append:
    doc_id: int
    expected_rev: int
    new_rev: int
    batch: list[Sequenced]
    encoded: list[str]
    future: asyncio.Future[None]
    #: characters of ``encoded``, all ops together
    size: int = 0


def take_group(queue: Sequence[_Append], budget: int = GROUP_BYTES) -> tuple[list[_Append], list[_Append]]:
    """The next group commit out of *queue* (in its order), and what stays queued.

    At most one append per document goes in a group, and at most *budget* of
    ops: an append that would take the group past it waits for the next group
    (unless the group is empty: one append larger than *budget* goes alone).
    """
    group: list[_Append] = []
    later: list[_Append] = []
    seen: set[int] = set()
    size = 0
    for item in queue:
        if item.doc_id in seen or (group and size + item.size > budget):
            later.append(item)
        else:
            seen.add(item.doc_id)
            group.append(item)
            size += item.size
    return group, later


# -- opening -----------------------------------------------------------------


async def open_store(
    dsn: str,
    *,
    hub_id: str,
    min_size: int = 2,
    max_size: int = 10,
    commit_concurrency: int = 2,
) -> Store:
    """Connect to *dsn*, apply pending migrations and return the :class:`Store`."""
    if " " in hub_id or not hub_id or len(hub_id.encode()) > MAX_HUB_ID_BYTES:
        raise ValueError(
            f"hub_id must be non-empty, without spaces and at most {MAX_HUB_ID_BYTES} bytes"
            " (it goes in NOTIFY payloads)"
        )
    if commit_concurrency < 1:
        raise ValueError("commit_concurrency must be positive")
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max(max_size, commit_concurrency + 1),
            server_settings={"application_name": f"pairls-hub {hub_id}", "jit": "off"},
            reset=_keep_session,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as e:
        raise StoreError(f"cannot connect to PostgreSQL: {type(e).__name__}") from e
    try:
        async with _db_errors("migrate"), pool.acquire() as conn:
            await migrate(conn)
    except BaseException:
        await pool.close()
        raise
    return Store(pool, dsn, hub_id, commit_concurrency)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to reset.

    asyncpg's default reset runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release: one more round trip per query,
    and ``Pool.fetchrow`` releases before it returns, so every group commit
    (hence every ack) waited for it.  The store leaves no session state on
    pooled connections: no SET, no cursors, LISTEN is on its own connection,
    and the migration lock is unlocked in ``migrate`` (if that fails,
    ``open_store`` closes the pool).  asyncpg still rolls back an open
    transaction and drops listeners before calling this.
    """


def _migrations() -> list[tuple[str, str]]:
    """(version, sql) of every bundled migration, in order; version is the file name's stem."""
    folder = resources.files(__package__).joinpath("migrations")
    files = sorted(f.name for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(name[: -len(".sql")], folder.joinpath(name).read_text(encoding="utf-8")) for name in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the bundled migrations not yet recorded in ``schema_migrations``; returns their versions.

    Each runs in its own transaction; an advisory lock makes hubs starting
    at the same time take turns.  Forward-only: nothing is ever dropped.
    """
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        known = set()
        for version, sql in _migrations():
            known.add(version)
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            logger.info("applied migration %s", version)
            applied_now.append(version)
        if done - known:
            logger.warning("database has migrations this hub does not know: %s", sorted(done - known))
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now


class _db_errors:  # noqa: N801 - used as the function it was: ``async with _db_errors("append")``
    """Turn database and connection failures into StoreError.

    The message never carries values: PostgreSQL's DETAIL and asyncpg's
    argument errors quote them, and they may be document text.

    A class, not ``contextlib.asynccontextmanager``: every statement of the hub goes through
    it, and the generator behind that decorator cost a lone append about 19 us of the hub's CPU
    (docs/benchmarks.md, "A lone append's CPU in the store").
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: object) -> None:
        """Raise the StoreError for *e*; anything else goes on as it is (nothing is suppressed)."""
        what = self.what
        if e is None:
            return
        if isinstance(e, (asyncpg.DataError, UnicodeEncodeError)):
            # a value that could not be encoded (a lone surrogate, say); the
            # original exception quotes it, so it is not chained
            raise StoreError(f"{what} failed: a value is not valid text") from None
        if isinstance(e, asyncpg.PostgresError):
            constraint = getattr(e, "constraint_name", None)
            extra = f" on {constraint}" if constraint else ""
            raise StoreError(f"{what} failed: {type(e).__name__} ({e.sqlstate}){extra}") from e
        if isinstance(e, (TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)):
            # InternalClientError: asyncpg's protocol state gets confused when the
            # server dies in the middle of a query ("cannot switch to state 12")
            raise StoreError(f"{what} failed: {type(e).__name__}") from e


def _encode_op(op: ops.Op) -> str:
    for c in op:
        if type(c) is str and "\x00" in c:
            raise StoreError("ops containing NUL (U+0000) cannot be stored")
    try:
        return orjson.dumps(op).decode()
    except orjson.JSONEncodeError:
        raise StoreError("ops UTF-8 cannot carry (a surrogate) cannot be stored") from None


def _sequenced(row: asyncpg.Record) -> Sequenced:
    # ops stored before the user was (migration 0003): the user is the client id
    return Sequenced(
        Rev(row[0]),
        orjson.loads(row[1]),
        ClientId(row[2]),
        row[3],
        row[4],
        row[5] or row[2],
        row[6] / 1_000_000,
        row[7],
        row[8],
    )


def micros(seconds: float) -> int:
    """*seconds* since the epoch as whole microseconds (what the op log keeps)."""
    return round(seconds * 1_000_000)


# -- the store ---------------------------------------------------------------


class Store:
    """The hub's view of PostgreSQL.  Create it with :func:`open_store`."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, hub_id: str, commit_concurrency: int) -> None:
        self.hub_id = hub_id
        self.stats = StoreStats()
        self._pool = pool
        self._dsn = dsn
        self._commit_concurrency = commit_concurrency
        self._queue: list[_Append] = []
        self._committers: set[asyncio.Task[None]] = set()
        #: committers waiting for work, each on its future (True: work came; False: stop)
        self._idle: list[asyncio.Future[bool]] = []
        self._closing = False
        self._listen_conn: asyncpg.Connection | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._callbacks: list[Callable[[str, int, int], None]] = []
        self._room_callbacks: list[Callable[[str, str, str], None]] = []
        self._peer_callbacks: list[Callable[[str], None]] = []
        self._on_reconnect: list[Callable[[], None]] = []
        self._commit_observers: list[CommitObserver] = []

    async def ping(self, timeout: float) -> bool:
        """True if PostgreSQL answers ``SELECT 1`` through the pool within *timeout* seconds.

        Never raises: a refused connection, a closed store or a slow answer is False.
        """
        try:
            async with asyncio.timeout(timeout), _db_errors("ping"):
                return bool(await self._pool.fetchval("SELECT 1") == 1)
        except (StoreError, TimeoutError):
            return False

    def add_commit_observer(self, observer: CommitObserver) -> None:
        """Call ``observer(seconds, ops)`` after every group-commit transaction PostgreSQL answered.

        *seconds* is the round trip of its one statement, *ops* how many ops
        it carried (those of documents that lost their compare-and-set
        included).  Runs on the committer's path: keep it cheap.
        """
        self._commit_observers.append(observer)

    def remove_commit_observer(self, observer: CommitObserver) -> None:
        with contextlib.suppress(ValueError):
            self._commit_observers.remove(observer)

    async def close(self) -> None:
        """Wait for queued and in-flight commits, then close the listener and the pool."""
        self._closing = True
        for waiting in self._idle:
            if not waiting.done():
                waiting.set_result(False)
        self._idle.clear()
        while self._committers:
            await asyncio.gather(*self._committers, return_exceptions=True)
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
            self._listen_task = None
        conn, self._listen_conn = self._listen_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)
        try:
            await asyncio.wait_for(self._pool.close(), 10)
        except (TimeoutError, asyncpg.InterfaceError, OSError):
            self._pool.terminate()

    # -- rooms, invites, members ---------------------------------------------

    async def create_room(
        self, room_id: str, name: str, invites: dict[str, bytes], *, max_rooms: int = 0
    ) -> bool:
        """Create a room with one invite per role (role -> SHA-256 digest of its secret).

        False (and nothing created) if the database holds *max_rooms* rooms
        already (0: no limit); concurrent creations, from any hub, are counted
        one at a time.  Raises StoreError if the room exists or a role is unknown.
        """
        for role in invites:
            if role not in ROLES:
                raise StoreError(f"unknown role {role!r}")
        async with _db_errors("create_room"), self._pool.acquire() as conn, conn.transaction():
            if max_rooms:
                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", QUOTA_LOCK, ROOMS_KEY)
                if await conn.fetchval("SELECT count(*) FROM rooms") >= max_rooms:
                    return False
            await conn.execute("INSERT INTO rooms (id, name) VALUES ($1, $2)", room_id, name)
            await conn.executemany(
                "INSERT INTO invites (room_id, role, secret_hash) VALUES ($1, $2, $3)",
                [(room_id, role, digest) for role, digest in invites.items()],
            )
        return True

    async def room_exists(self, room_id: str) -> bool:
        async with _db_errors("room_exists"):
            return bool(
                await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM rooms WHERE id = $1)", room_id)
            )

    async def admission(self, room_id: str, secret_hash: bytes, client_id: str) -> JoinFacts:
        """What the database says about *client_id* joining *room_id* with this secret, in one round trip.

        The room's invites come back whole, as (role, SHA-256 digest of the secret): the hub
        compares the digests itself, in constant time (``invites.role_for``).  No invites: no such room.
        """
        async with _db_errors("admission"):
            row = await self._pool.fetchrow(
                "SELECT ARRAY(SELECT i.role FROM invites i WHERE i.room_id = $1 ORDER BY i.role),"
                " ARRAY(SELECT i.secret_hash FROM invites i WHERE i.room_id = $1 ORDER BY i.role),"
                " (SELECT m.role FROM members m WHERE m.room_id = $1 AND m.client_id = $3 AND m.role_set),"
                " EXISTS (SELECT 1 FROM members m WHERE m.room_id = $1 AND m.client_id = $3),"
                " EXISTS (SELECT 1 FROM removals r WHERE r.room_id = $1 AND r.client_id = $3),"
                " EXISTS (SELECT 1 FROM removals r WHERE r.room_id = $1 AND r.secret_hash = $2)",
                room_id,
                secret_hash,
                client_id,
            )
        invites = tuple(zip(row[0], (bytes(h) for h in row[1]), strict=True))
        return JoinFacts(invites, row[2], row[3], row[4], row[5])

    async def add_member(
        self,
        room_id: str,
        client_id: str,
        name: str,
        role: str,
        *,
        participant: str | None = None,
        secret_hash: bytes | None = None,
        user: str | None = None,
    ) -> bool:
        """Record that *client_id* joined (or rejoined) *room_id*; updates name, role, last_seen.

        *user* is who the client is across room entries (None: the client id).
        Marks the room active.  False if the room does not exist (any more).
        """
        async with _db_errors("add_member"):
            done = await self._pool.fetchval(
                "WITH r AS (UPDATE rooms SET last_active = now() WHERE id = $1 RETURNING id)"
                " INSERT INTO members (room_id, client_id, name, role, participant, secret_hash, user_id)"
                " SELECT r.id, $2, $3, $4, $5, $6, $7 FROM r"
                " ON CONFLICT (room_id, client_id) DO UPDATE"
                " SET name = excluded.name, role = excluded.role, participant = excluded.participant,"
                " secret_hash = excluded.secret_hash, user_id = excluded.user_id, last_seen = now()"
                " RETURNING true",
                room_id,
                client_id,
                name,
                role,
                participant,
                secret_hash,
                user,
            )
        return bool(done)

    async def user_names(self, room_id: str, users: Sequence[str]) -> dict[str, str]:
        """The newest name each of *users* joined *room_id* with (users never seen are absent).

        A member recorded without a user (before migration 0003) is its client id.
        """
        async with _db_errors("user_names"):
            rows = await self._pool.fetch(
                "SELECT DISTINCT ON (u) u, name FROM ("
                "  SELECT coalesce(user_id, client_id) AS u, name, last_seen FROM members WHERE room_id = $1"
                ") m WHERE u = ANY($2::text[]) ORDER BY u, last_seen DESC",
                room_id,
                list(users),
            )
        return {r[0]: r[1] for r in rows}

    async def find_member(self, room_id: str, participant: str) -> Seat | None:
        """The member whose newest connection is (or was) *participant*, on any hub."""
        async with _db_errors("find_member"):
            row = await self._pool.fetchrow(
                "SELECT client_id, role, secret_hash FROM members WHERE room_id = $1 AND participant = $2"
                " ORDER BY last_seen DESC LIMIT 1",
                room_id,
                participant,
            )
        return None if row is None else Seat(participant, row[0], row[1], row[2] or b"")

    async def remove_member(self, room_id: str, client_id: str, secret_hash: bytes | None) -> None:
        """The owner removed *client_id*: it may not come back, nor anyone new with its secret."""
        async with _db_errors("remove_member"), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO removals (room_id, client_id, secret_hash) VALUES ($1, $2, $3)"
                " ON CONFLICT (room_id, client_id) DO UPDATE SET secret_hash = excluded.secret_hash",
                room_id,
                client_id,
                secret_hash,
            )
            await self._notify_room(conn, room_id, "removed")

    async def set_member_role(self, room_id: str, client_id: str, role: str) -> None:
        """The owner gave *client_id* the *role* (kept when it reconnects)."""
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r}")
        async with _db_errors("set_member_role"), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE members SET role = $3, role_set = true WHERE room_id = $1 AND client_id = $2",
                room_id,
                client_id,
                role,
            )
            await self._notify_room(conn, room_id, "role")

    async def rotate_invites(self, room_id: str, invites: dict[str, bytes]) -> bool:
        """Replace the room's invites of these roles (role -> digest of the new secret); False if no room."""
        for role in invites:
            if role not in ROLES:
                raise StoreError(f"unknown role {role!r}")
        async with _db_errors("rotate_invites"), self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval("SELECT id FROM rooms WHERE id = $1 FOR UPDATE", room_id) is None:
                return False
            await conn.execute(
                "DELETE FROM invites WHERE room_id = $1 AND role = ANY($2::text[])", room_id, list(invites)
            )
            await conn.executemany(
                "INSERT INTO invites (room_id, role, secret_hash) VALUES ($1, $2, $3)",
                [(room_id, role, digest) for role, digest in invites.items()],
            )
            await self._notify_room(conn, room_id, "rotated")
        return True

    async def room_states(self, room_ids: Sequence[str], *, touch: bool = False) -> dict[str, RoomState]:
        """The rooms as stored; *touch* marks them active.

        A room deleted lately is there with ``exists`` False and who deleted
        it; a room that never existed (or was deleted long ago) is absent.
        """
        rooms = "(UPDATE rooms SET last_active = now() WHERE id = ANY($1::text[]) RETURNING id)"
        if not touch:
            rooms = "(SELECT id FROM rooms WHERE id = ANY($1::text[]))"
        async with _db_errors("room_states"):
            rows = await self._pool.fetch(
                f"WITH r AS {rooms} SELECT r.id,"
                " ARRAY(SELECT secret_hash FROM invites i WHERE i.room_id = r.id),"
                " ARRAY(SELECT client_id FROM removals x WHERE x.room_id = r.id),"
                " ARRAY(SELECT client_id || ' ' || role FROM members m WHERE m.room_id = r.id AND m.role_set)"
                " FROM r",
                list(room_ids),
            )
            out = {}
            for room_id, secrets, removed, roles in rows:
                out[room_id] = RoomState(
                    True,
                    frozenset(bytes(x) for x in secrets),
                    frozenset(removed),
                    dict(x.split(" ", 1) for x in roles),
                )
            gone = [r for r in room_ids if r not in out]
            if gone:
                for room_id, by in await self._pool.fetch(
                    "SELECT id, deleted_by FROM deleted_rooms WHERE id = ANY($1::text[])", gone
                ):
                    out[room_id] = RoomState(False, deleted_by=by)
        return out

    async def touch_rooms(self, room_ids: Sequence[str]) -> None:
        """Mark the rooms active now (the idle sweep counts from the last time)."""
        async with _db_errors("touch_rooms"):
            await self._pool.execute(
                "UPDATE rooms SET last_active = now() WHERE id = ANY($1::text[])", list(room_ids)
            )

    async def delete_room(self, room_id: str, *, by: str) -> bool:
        """Delete the room and everything in it (*by*: owner or operator); False if there was none."""
        async with _db_errors("delete_room"), self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval("SELECT id FROM rooms WHERE id = $1 FOR UPDATE", room_id) is None:
                return False
            await self._delete_rooms(conn, [room_id], by)
        logger.info("deleted room %s (by the %s)", room_id[:8], by)
        return True

    async def forget_deleted_rooms(self, older_than: float = 7 * 86400.0) -> int:
        """Drop the record of rooms deleted more than *older_than* seconds ago; returns how many."""
        async with _db_errors("forget_deleted_rooms"):
            done = await self._pool.execute(
                "DELETE FROM deleted_rooms WHERE deleted_at < now() - make_interval(secs => $1)",
                float(older_than),
            )
        return int(done.split()[-1])

    async def delete_idle_rooms(self, idle: float, *, keep: Sequence[str] = (), limit: int = 50) -> list[str]:
        """Delete rooms with no member connected and no op for *idle* seconds; returns their ids.

        Safe with several hubs sweeping at once: each room is locked (rooms
        another sweep holds are skipped) and its idleness checked under the
        lock.  *keep*: rooms someone is connected to on this hub.
        """
        async with _db_errors("delete_idle_rooms"), self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT r.id FROM rooms r"
                " WHERE r.last_active < now() - make_interval(secs => $1) AND NOT r.id = ANY($2::text[])"
                " AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.room_id = r.id AND EXISTS ("
                "   SELECT 1 FROM (SELECT created_at FROM ops o WHERE o.document_id = d.id"
                "   ORDER BY o.rev DESC LIMIT 1) last"
                "   WHERE last.created_at >= now() - make_interval(secs => $1)))"
                " ORDER BY r.last_active LIMIT $3 FOR UPDATE OF r SKIP LOCKED",
                float(idle),
                list(keep),
                limit,
            )
            ids = [r[0] for r in rows]
            if ids:
                await self._delete_rooms(conn, ids, "idle")
        if ids:
            logger.info("deleted %d idle rooms", len(ids))
        return ids

    async def _delete_rooms(self, conn: asyncpg.Connection, ids: list[str], by: str) -> None:
        """Delete rooms whose rows the caller's transaction has locked, with all their rows.

        The documents are locked first: an append in flight commits before
        (and its ops go with the rest); one that comes after finds no
        document (:class:`DocumentGone`).
        """
        docs = [
            r[0]
            for r in await conn.fetch(
                "SELECT id FROM documents WHERE room_id = ANY($1::text[]) FOR UPDATE", ids
            )
        ]
        await conn.execute("DELETE FROM ops WHERE document_id = ANY($1::bigint[])", docs)
        await conn.execute("DELETE FROM snapshots WHERE document_id = ANY($1::bigint[])", docs)
        await conn.execute("DELETE FROM documents WHERE room_id = ANY($1::text[])", ids)
        for table in ("members", "invites", "removals", "participants"):
            await conn.execute(f"DELETE FROM {table} WHERE room_id = ANY($1::text[])", ids)
        await conn.execute("DELETE FROM rooms WHERE id = ANY($1::text[])", ids)
        await conn.execute(
            "INSERT INTO deleted_rooms (id, deleted_by) SELECT unnest($1::text[]), $2"
            " ON CONFLICT (id) DO UPDATE SET deleted_by = excluded.deleted_by, deleted_at = now()",
            ids,
            by,
        )
        for room_id in ids:
            await self._notify_room(conn, room_id, f"deleted:{by}")

    async def _notify_room(self, conn: asyncpg.Connection, room_id: str, event: str) -> None:
        """Tell every hub (delivered when the transaction commits) that *room_id* changed."""
        await conn.execute("SELECT pg_notify($1, $2)", ROOMS_CHANNEL, f"{self.hub_id} {room_id} {event}")

    async def list_rooms(self) -> list[RoomInfo]:
        """Every room, the most recently active first (for the operator)."""
        async with _db_errors("list_rooms"):
            rows = await self._pool.fetch(
                "SELECT r.id, r.name,"
                " (SELECT count(*) FROM documents d WHERE d.room_id = r.id),"
                " (SELECT coalesce(sum(octet_length(s.text)), 0) FROM snapshots s"
                "   JOIN documents d ON d.id = s.document_id WHERE d.room_id = r.id)"
                " + (SELECT coalesce(sum(octet_length(o.op)), 0) FROM ops o"
                "   JOIN documents d ON d.id = o.document_id WHERE d.room_id = r.id),"
                " r.created_at, r.last_active"
                " FROM rooms r ORDER BY r.last_active DESC, r.id"
            )
        return [RoomInfo(r[0], r[1], int(r[2]), int(r[3]), r[4], r[5]) for r in rows]

    # -- participants on every hub (roster.py) ------------------------------------

    async def register_hub(self) -> None:
        """This hub is alive (its row in ``hubs``, made or refreshed).

        Commits notify (``pairls_ops``) only while a hub other than their
        committer has a row: from when this row is visible, the other hubs'
        commits notify this one.  A commit whose statement began before that
        (in flight now) does not: a hub that registers reads its open
        documents' logs again a moment later (``Hub``), and the periodic check
        of their heads catches what is left.
        """
        async with _db_errors("register_hub"):
            await self._pool.execute(
                "INSERT INTO hubs (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
                self.hub_id,
            )

    async def heartbeat(self, *, expiry: float) -> Beat:
        """Say this hub is alive, and whether another hub beat within *expiry* seconds."""
        async with _db_errors("heartbeat"):
            others = await self._pool.fetchrow(
                "UPDATE hubs SET heartbeat_at = now() WHERE id = $1"
                " RETURNING EXISTS (SELECT 1 FROM hubs WHERE id <> $1"
                " AND heartbeat_at > now() - make_interval(secs => $2))",
                self.hub_id,
                float(expiry),
            )
        if others is None:
            return Beat(alive=False, others=True)
        return Beat(alive=True, others=bool(others[0]))

    async def enter_room(
        self,
        room_id: str,
        participant: str,
        client_id: str,
        name: str,
        role: str,
        *,
        expiry: float,
        ask: bool = False,
    ) -> list[roster.Row]:
        """Record *participant* (of *client_id*) in *room_id* on this hub, tell the other hubs, and
        return who else is in the room on live hubs (heartbeat within *expiry* seconds).

        The client's earlier connections to the room, on any hub, are replaced: their rows go
        and their hubs are told (``replaced``), so a client that came back through another hub
        is listed once, at once.  *ask*: the other hubs are asked for their members' presence
        (``ask``).  One statement.
        """
        joined = roster.encode(
            self.hub_id, room_id, "joined", {"id": participant, "name": name, "role": role}
        )
        async with _db_errors("enter_room"):
            row = await self._pool.fetchrow(
                "WITH gone AS ("
                "  DELETE FROM participants WHERE room_id = $1 AND client_id = $3 AND participant <> $2"
                "  RETURNING participant"
                "), ins AS ("
                "  INSERT INTO participants (room_id, participant, hub_id, client_id, name, role)"
                "  VALUES ($1, $2, $4, $3, $5, $6) ON CONFLICT (room_id, participant) DO UPDATE"
                "  SET hub_id = excluded.hub_id, name = excluded.name, role = excluded.role RETURNING 1"
                "), n AS ("
                "  SELECT pg_notify($7, $4::text || ' ' || $1::text || ' replaced '"
                "    || json_build_object('id', participant)::text) FROM gone"
                "  UNION ALL SELECT pg_notify($7, $8) FROM ins"
                "  UNION ALL SELECT pg_notify($7, $10) WHERE $10::text IS NOT NULL"
                ") SELECT (SELECT count(*) FROM n), ARRAY("
                "  SELECT p.participant || ' ' || p.hub_id || ' ' || p.role || ' ' || p.name"
                "  FROM participants p JOIN hubs h ON h.id = p.hub_id"
                "  WHERE p.room_id = $1 AND p.hub_id <> $4"
                "  AND p.participant NOT IN (SELECT participant FROM gone)"
                "  AND h.heartbeat_at > now() - make_interval(secs => $9))",
                room_id,
                participant,
                client_id,
                self.hub_id,
                name,
                role,
                roster.CHANNEL,
                joined,
                float(expiry),
                roster.encode(self.hub_id, room_id, "ask", {}) if ask else None,
            )
        assert row is not None
        out = []
        for entry in row[1]:
            participant, hub_id, role, name = entry.split(" ", 3)  # (a name may hold spaces: last)
            out.append(roster.Row(participant, hub_id, name, role))
        return out

    async def leave_room(self, room_id: str, participant: str) -> None:
        """*participant* is no longer in *room_id* here: its row goes, and the other hubs are told."""
        payload = roster.encode(self.hub_id, room_id, "left", {"id": participant})
        async with _db_errors("leave_room"):
            await self._pool.fetchval(
                "WITH d AS (DELETE FROM participants WHERE room_id = $1 AND participant = $2 AND hub_id = $3"
                " RETURNING 1) SELECT count(pg_notify($4, $5)) FROM d",
                room_id,
                participant,
                self.hub_id,
                roster.CHANNEL,
                payload,
            )

    async def change_participant(self, room_id: str, participant: str, name: str, role: str) -> None:
        """*participant* (connected here) has a new role: its row, and the other hubs, say so."""
        payload = roster.encode(
            self.hub_id, room_id, "changed", {"id": participant, "name": name, "role": role}
        )
        async with _db_errors("change_participant"):
            await self._pool.fetchval(
                "WITH u AS (UPDATE participants SET name = $3, role = $4"
                " WHERE room_id = $1 AND participant = $2 AND hub_id = $5 RETURNING 1)"
                " SELECT count(pg_notify($6, $7)) FROM u",
                room_id,
                participant,
                name,
                role,
                self.hub_id,
                roster.CHANNEL,
                payload,
            )

    async def publish(self, payloads: Sequence[str]) -> None:
        """Send these ``pairls_peers`` payloads (presence) in one statement."""
        if not payloads:
            return
        async with _db_errors("publish"):
            await self._pool.fetchval(
                "SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p", roster.CHANNEL, list(payloads)
            )

    async def remote_participants(
        self, room_ids: Sequence[str], *, expiry: float
    ) -> dict[str, list[roster.Row]]:
        """The participants of *room_ids* on the other hubs whose heartbeat is within *expiry* seconds."""
        out: dict[str, list[roster.Row]] = {}
        if not room_ids:
            return out
        async with _db_errors("remote_participants"):
            rows = await self._pool.fetch(
                "SELECT p.room_id, p.participant, p.hub_id, p.name, p.role"
                " FROM participants p JOIN hubs h ON h.id = p.hub_id"
                " WHERE p.room_id = ANY($1::text[]) AND p.hub_id <> $2"
                " AND h.heartbeat_at > now() - make_interval(secs => $3)",
                list(room_ids),
                self.hub_id,
                float(expiry),
            )
        for room_id, participant, hub_id, name, role in rows:
            out.setdefault(room_id, []).append(roster.Row(participant, hub_id, name, role))
        return out

    async def sync_participants(self, rows: Sequence[tuple[str, str, str, str, str]]) -> None:
        """Make this hub's rows exactly *rows* ((room, participant, client id, name, role) of every
        connection in a room here) and its ``hubs`` row alive; tell the other hubs.

        For a hub whose rows were lost (taken for dead, the database emptied the tables after a
        crash) or may be wrong (a departure that could not be written).
        """
        keys = [f"{r[0]} {r[1]}" for r in rows]
        joined = [
            roster.encode(self.hub_id, r[0], "joined", {"id": r[1], "name": r[3], "role": r[4]}) for r in rows
        ]
        async with _db_errors("sync_participants"), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO hubs (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
                self.hub_id,
            )
            await conn.fetchval(
                "WITH gone AS (DELETE FROM participants WHERE hub_id = $1"
                " AND NOT (room_id || ' ' || participant) = ANY($2::text[]) RETURNING room_id, participant)"
                " SELECT count(pg_notify($3, $1::text || ' ' || room_id || ' left '"
                " || json_build_object('id', participant)::text)) FROM gone",
                self.hub_id,
                keys,
                roster.CHANNEL,
            )
            await conn.execute(
                "INSERT INTO participants (room_id, participant, hub_id, client_id, name, role)"
                " SELECT r, p, $1, c, n, o"
                " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(r, p, c, n, o)"
                " ON CONFLICT (room_id, participant) DO UPDATE"
                " SET hub_id = excluded.hub_id, name = excluded.name, role = excluded.role",
                self.hub_id,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [r[3] for r in rows],
                [r[4] for r in rows],
            )
            await conn.fetchval(
                "SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p", roster.CHANNEL, joined
            )

    async def unregister_hub(self) -> int:
        """This hub stops: its participants leave (the other hubs are told) and its row goes."""
        async with _db_errors("unregister_hub"):
            n = await self._pool.fetchval(
                "WITH gone AS (DELETE FROM participants WHERE hub_id = $1 RETURNING room_id, participant),"
                " h AS (DELETE FROM hubs WHERE id = $1)"
                " SELECT count(pg_notify($2, $1::text || ' ' || room_id || ' left '"
                " || json_build_object('id', participant)::text)) FROM gone",
                self.hub_id,
                roster.CHANNEL,
            )
        return int(n)

    async def forget_dead_hubs(self, older_than: float) -> int:
        """Delete the rows of hubs silent for *older_than* seconds, and participants of no hub;
        returns how many hubs.  (Their participants are out of every list already: tidying.)"""
        async with _db_errors("forget_dead_hubs"):
            n = await self._pool.fetchval(
                "WITH dead AS (DELETE FROM hubs WHERE heartbeat_at < now() - make_interval(secs => $1)"
                " RETURNING id), gone AS (DELETE FROM participants p WHERE p.hub_id IN (SELECT id FROM dead)"
                " OR NOT EXISTS (SELECT 1 FROM hubs h WHERE h.id = p.hub_id) RETURNING 1)"
                " SELECT (SELECT count(*) FROM dead) + 0 * (SELECT count(*) FROM gone)",
                float(older_than),
            )
        return int(n)

    # -- documents ----------------------------------------------------------

    async def list_documents(self, room_id: str) -> list[DocumentRecord]:
        """The documents of a room, ordered by path (code point order)."""
        async with _db_errors("list_documents"):
            rows = await self._pool.fetch(
                "SELECT id, room_id, path, rev FROM documents WHERE room_id = $1 ORDER BY path", room_id
            )
        return [DocumentRecord(*r) for r in rows]

    async def heads(self, doc_ids: list[int]) -> dict[int, int]:
        """Each of *doc_ids*' committed revision (documents that no longer exist are left out)."""
        async with _db_errors("heads"):
            rows = await self._pool.fetch(
                "SELECT id, rev FROM documents WHERE id = ANY($1::bigint[])", doc_ids
            )
        return {r["id"]: r["rev"] for r in rows}

    async def get_document(self, room_id: str, path: str) -> DocumentRecord | None:
        async with _db_errors("get_document"):
            row = await self._pool.fetchrow(
                "SELECT id, room_id, path, rev FROM documents WHERE room_id = $1 AND path = $2", room_id, path
            )
        return None if row is None else DocumentRecord(*row)

    async def create_document(
        self,
        room_id: str,
        path: str,
        text: str = "",
        *,
        max_documents: int = 0,
        created_by: str = "",
        by: str | None = None,
    ) -> DocumentRecord | None:
        """Create a document at rev 0 with *text*; None if the path is taken in the room.

        *created_by*: the user who created it (its initial text is theirs in the history).
        *by*: the participant who did, if any: the other hubs are told (``document``, delivered
        when the document exists for them to open).

        Raises :class:`QuotaExceeded` if the room holds *max_documents*
        documents already (0: no limit); concurrent creations in one room are
        counted one at a time.
        """
        if "\x00" in text:
            raise StoreError("text containing NUL (U+0000) cannot be stored")
        async with _db_errors("create_document"), self._pool.acquire() as conn, conn.transaction():
            if max_documents:
                await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", QUOTA_LOCK, room_id)
                count, taken = await conn.fetchrow(
                    "SELECT count(*), coalesce(bool_or(path = $2), false) FROM documents WHERE room_id = $1",
                    room_id,
                    path,
                )
                if taken:
                    return None
                if count >= max_documents:
                    raise QuotaExceeded("this room has as many documents as the hub allows")
            row = await conn.fetchrow(
                "WITH d AS ("
                "  INSERT INTO documents (room_id, path, created_by) VALUES ($1, $2, $4)"
                "  ON CONFLICT (room_id, path) DO NOTHING RETURNING id, room_id, path, rev"
                "), s AS ("
                "  INSERT INTO snapshots (document_id, rev, text) SELECT id, 0, $3 FROM d"
                "), n AS ("
                "  SELECT pg_notify($5, $6) FROM d WHERE $6::text IS NOT NULL"
                ") SELECT id, room_id, path, rev, (SELECT count(*) FROM n) FROM d",
                room_id,
                path,
                text,
                created_by,
                roster.CHANNEL,
                None
                if by is None
                else roster.encode(self.hub_id, room_id, "document", {"path": path, "rev": 0, "by": by}),
            )
        return None if row is None else DocumentRecord(*row[:4])

    async def load_document(self, doc_id: int, *, history: int = 1000) -> LoadedDocument:
        """The document at its head: text, rev and the last *history* ops (oldest first)."""
        async with _db_errors("load_document"), self._pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                head = await conn.fetchval("SELECT rev FROM documents WHERE id = $1", doc_id)
                if head is None:
                    raise StoreError(f"no document {doc_id}")
                snap = await conn.fetchrow(
                    "SELECT rev, text FROM snapshots WHERE document_id = $1 AND rev <= $2"
                    " ORDER BY rev DESC LIMIT 1",
                    doc_id,
                    head,
                )
                snap_rev, text = (0, "") if snap is None else (snap[0], snap[1])
                since = min(snap_rev, head - max(history, 0))
                rows = await conn.fetch(
                    f"SELECT {_OPS_COLUMNS} FROM ops WHERE document_id = $1 AND rev > $2 AND rev <= $3"
                    " ORDER BY rev",
                    doc_id,
                    since,
                    head,
                )
        seqs = [_sequenced(r) for r in rows]
        if len(seqs) != head - max(since, 0):
            raise StoreError(f"document {doc_id}: op log has gaps")
        try:
            for s in seqs:
                if s.rev > snap_rev:
                    text = ops.apply(text, s.op)
        except ops.InvalidOp as e:
            raise StoreError(f"document {doc_id}: stored op does not apply") from e
        keep = [s for s in seqs if s.rev > head - history] if history > 0 else []
        return LoadedDocument(text, head, keep)

    async def ops_since(self, doc_id: int, rev: int, limit: int | None = None) -> list[Sequenced]:
        """Committed ops with revision > *rev*, ascending, at most *limit*."""
        async with _db_errors("ops_since"):
            rows = await self._pool.fetch(
                f"SELECT {_OPS_COLUMNS} FROM ops WHERE document_id = $1 AND rev > $2 ORDER BY rev LIMIT $3",
                doc_id,
                rev,
                limit,
            )
        return [_sequenced(r) for r in rows]

    async def document_origin(self, doc_id: int) -> DocumentOrigin:
        """Revision 0 of the document: its initial text, who created it and when."""
        async with _db_errors("document_origin"):
            row = await self._pool.fetchrow(
                "SELECT s.text, d.created_by, (extract(epoch FROM d.created_at) * 1000000)::bigint"
                " FROM documents d JOIN snapshots s ON s.document_id = d.id AND s.rev = 0 WHERE d.id = $1",
                doc_id,
            )
        if row is None:
            raise DocumentGone(f"document {doc_id} was deleted")
        return DocumentOrigin(row[0], row[1], row[2] / 1_000_000)

    async def revision(self, doc_id: int, rev: int) -> Revision | None:
        """What the text at *rev* is made of: the newest snapshot at or before it and the ops
        after that snapshot up to *rev*; None if the document has no revision *rev* (yet)."""
        async with _db_errors("revision"), self._pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                head = await conn.fetchval("SELECT rev FROM documents WHERE id = $1", doc_id)
                if head is None:
                    raise DocumentGone(f"document {doc_id} was deleted")
                if rev > head:
                    return None
                snap = await conn.fetchrow(
                    "SELECT rev, text FROM snapshots WHERE document_id = $1 AND rev <= $2"
                    " ORDER BY rev DESC LIMIT 1",
                    doc_id,
                    rev,
                )
                snap_rev, text = (0, "") if snap is None else (snap[0], snap[1])
                rows = await conn.fetch(
                    "SELECT op FROM ops WHERE document_id = $1 AND rev > $2 AND rev <= $3 ORDER BY rev",
                    doc_id,
                    snap_rev,
                    rev,
                )
        if len(rows) != rev - snap_rev:
            raise StoreError(f"document {doc_id}: op log has gaps")
        return Revision(text, snap_rev, [orjson.loads(r[0]) for r in rows])

    async def last_client_seq(self, doc_id: int, client_id: str) -> tuple[int, int] | None:
        """(highest seq, its rev) that *client_id* committed on the document, or None."""
        async with _db_errors("last_client_seq"):
            row = await self._pool.fetchrow(
                "SELECT client_seq, rev FROM ops WHERE document_id = $1 AND client_id = $2"
                " ORDER BY client_seq DESC LIMIT 1",
                doc_id,
                client_id,
            )
        return None if row is None else (row[0], row[1])

    async def find_op(self, doc_id: int, client_id: str, seq: int) -> int | None:
        """The revision of the op (client_id, seq), if committed."""
        async with _db_errors("find_op"):
            rev: int | None = await self._pool.fetchval(
                "SELECT rev FROM ops WHERE document_id = $1 AND client_id = $2 AND client_seq = $3",
                doc_id,
                client_id,
                seq,
            )
            return rev

    async def save_snapshot(self, doc_id: int, rev: int, text: str) -> None:
        """Store the document's *text* at *rev* (a no-op if that snapshot exists)."""
        if "\x00" in text:
            raise StoreError("text containing NUL (U+0000) cannot be stored")
        async with _db_errors("save_snapshot"):
            await self._pool.execute(
                "INSERT INTO snapshots (document_id, rev, text) VALUES ($1, $2, $3)"
                " ON CONFLICT (document_id, rev) DO NOTHING",
                doc_id,
                rev,
                text,
            )
        logger.debug("snapshot of document %s at rev %s", doc_id, rev)

    # -- appending (group commit) ------------------------------------------------

    async def append(self, doc_id: int, expected_rev: int, batch: list[Sequenced]) -> None:
        """Commit *batch* (revs expected_rev+1, ...) to the document; returns after COMMIT.

        Raises :class:`RevisionConflict` if the document's head is not
        *expected_rev* (another hub committed first) and :class:`StoreError`
        for any other failure; either way nothing of *batch* was written.
        At most one append per document may be in flight.
        """
        if not batch:
            return
        for i, s in enumerate(batch, expected_rev + 1):
            if s.rev != i:
                raise InvalidState("batch revisions must follow expected_rev without gaps")
        if self._closing:
            raise StoreError("store is closed")
        encoded = [_encode_op(s.op) for s in batch]
        loop = asyncio.get_running_loop()
        item = _Append(
            doc_id,
            expected_rev,
            expected_rev + len(batch),
            batch,
            encoded,
            loop.create_future(),
            sum(map(len, encoded)),
        )
        self._queue.append(item)
        self._kick()
        # the commit goes on even if our caller is cancelled (the future with it: the committer
        # tells a cancelled future nothing); only the wait stops
        await item.future

    def _kick(self) -> None:
        """Something is queued: wake a committer out of work, or start one if there are fewer
        than ``commit_concurrency``."""
        while self._idle:
            waiting = self._idle.pop()
            if not waiting.done():
                waiting.set_result(True)
                return
        if len(self._committers) < self._commit_concurrency:
            task = asyncio.get_running_loop().create_task(self._committer())
            self._committers.add(task)
            task.add_done_callback(self._committers.discard)

    async def _committer(self) -> None:
        """Commit groups while there are any, on one connection held throughout.

        Out of work, it waits up to :data:`COMMITTER_LINGER` seconds for more
        with the connection still held: a hub that commits all the time pays
        for neither a task nor a pool acquire and release per transaction.
        """
        held = _Held()
        me = asyncio.current_task()
        try:
            while True:
                if not self._queue:
                    if not self._closing and await self._more_work():
                        continue
                    if self._queue and not self._closing:
                        continue  # queued just as the linger ended
                    # no longer counted from here on: an append from now on starts another
                    self._committers.discard(me)
                    return
                group = self._take_group()
                if self._queue:
                    self._kick()  # what did not fit goes alongside, on another connection
                try:
                    await self._commit_group(group, held)
                except BaseException as e:  # noqa: BLE001 - fail the waiters, then re-raise cancellation
                    for item in group:
                        if not item.future.done():
                            item.future.set_exception(StoreError(f"commit failed: {type(e).__name__}"))
                    if isinstance(e, asyncio.CancelledError):
                        raise
                    logger.exception("group commit failed")
                    await held.drop(self._pool)
        finally:
            await held.drop(self._pool)

    async def _more_work(self) -> bool:
        """Wait until :meth:`append` queues something (True) or the linger is over (False)."""
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[bool] = loop.create_future()
        self._idle.append(waiting)
        timer = loop.call_later(COMMITTER_LINGER, _resolve, waiting, False)
        try:
            return await waiting
        finally:
            timer.cancel()
            if waiting in self._idle:
                self._idle.remove(waiting)

    def _take_group(self) -> list[_Append]:
        group, self._queue = take_group(self._queue)
        return group

    async def _commit_group(self, group: list[_Append], held: _Held) -> None:
        try:
            committed = await self._run_append(group, held)
        except StoreError as e:
            if len(group) == 1:
                await self._settle_single(group[0], e)
                return
            # Something in the group failed the whole transaction (a unique
            # violation, say, or the connection dropped): nothing of it was
            # written unless the COMMIT itself was lost.  Commit each document
            # on its own so one bad document does not fail the others.
            self.stats.split_retries += 1
            logger.debug("group of %d appends failed (%s); retrying one by one", len(group), e)
            for item in group:
                try:
                    done = await self._run_append([item], held)
                except StoreError as e1:
                    await self._settle_single(item, e1)
                else:
                    await self._settle([item], done, verify=True)
            return
        await self._settle(group, committed, verify=False)

    async def _run_append(self, group: list[_Append], held: _Held) -> set[int]:
        """Run the group-commit statement; returns the ids of the documents committed."""
        if len(group) == 1 and len(group[0].batch) == 1:
            item = group[0]
            s = item.batch[0]
            args: tuple[object, ...] = (
                item.doc_id, item.expected_rev, item.new_rev,
                s.author, s.client_id, s.seq, item.encoded[0],
                s.user, s.change_rev, s.toggles, micros(s.time) if s.time else None,
                self.hub_id,
            )  # fmt: skip
            return await self._run_statement(_APPEND_ONE_SQL, args, 1, held)
        heads: list[tuple[int, int, int]] = []
        rows: list[tuple[object, ...]] = []
        for item in group:
            heads.append((item.doc_id, item.expected_rev, item.new_rev))
            for s, text in zip(item.batch, item.encoded, strict=True):
                rows.append((
                    item.doc_id, s.rev, s.author, s.client_id, s.seq, text,
                    s.user, s.change_rev, s.toggles,
                    # (a time of 0: not given, the database's clock)
                    micros(s.time) if s.time else None,
                ))  # fmt: skip
        args = (_json_rows(heads), _json_rows(rows), self.hub_id)
        return await self._run_statement(_APPEND_SQL, args, len(rows), held)

    async def _run_statement(self, sql: str, args: tuple[object, ...], n_ops: int, held: _Held) -> set[int]:
        """One group-commit transaction; returns the ids of the documents committed."""
        self.stats.transactions += 1
        started = time.perf_counter()
        try:
            async with _db_errors("append"):
                if held.conn is None:
                    held.conn = await self._pool.acquire()
                row = await held.conn.fetchrow(sql, *args)
        except StoreError:
            # the connection may be broken: back to the pool (which checks it); the next one is fresh
            await held.drop(self._pool)
            raise
        assert row is not None
        if self._commit_observers:
            elapsed = time.perf_counter() - started
            for observer in self._commit_observers:
                try:
                    observer(elapsed, n_ops)
                except Exception:
                    # a broken observer must not fail a commit that happened
                    logger.exception("commit observer failed")
        return set(row["committed"])

    async def _settle(self, group: list[_Append], committed: set[int], *, verify: bool) -> None:
        for item in group:
            if item.doc_id in committed:
                self.stats.appends += 1
                self.stats.ops += len(item.batch)
                if not item.future.done():  # (its waiter was cancelled)
                    item.future.set_result(None)
            elif item.future.done():
                continue  # nobody waits to hear why not
            elif verify and await self._already_committed(item):
                # the first attempt did commit; only its answer was lost
                self.stats.appends += 1
                self.stats.ops += len(item.batch)
                item.future.set_result(None)
            elif not await self._document_exists(item.doc_id):
                # its room was deleted: nothing will ever commit on it again
                item.future.set_exception(DocumentGone(f"document {item.doc_id} was deleted"))
            else:
                self.stats.conflicts += 1
                item.future.set_exception(
                    RevisionConflict(f"document {item.doc_id} is not at revision {item.expected_rev}")
                )
        logger.debug("committed %d appends", sum(1 for i in group if i.doc_id in committed))

    async def _settle_single(self, item: _Append, error: StoreError) -> None:
        if item.future.done():
            return
        with contextlib.suppress(StoreError):
            if await self._already_committed(item):
                self.stats.appends += 1
                self.stats.ops += len(item.batch)
                item.future.set_result(None)
                return
        item.future.set_exception(error)

    async def _document_exists(self, doc_id: int) -> bool:
        """Asked only after a lost compare-and-set (rare): was it lost to a deletion?"""
        try:
            async with _db_errors("append"):
                return bool(
                    await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM documents WHERE id = $1)", doc_id)
                )
        except StoreError:
            return True  # unknown: a conflict, which reads the log and tries again

    async def _already_committed(self, item: _Append) -> bool:
        """True if exactly this batch is in the log (a COMMIT whose answer was lost)."""
        async with _db_errors("append"):
            rows = await self._pool.fetch(
                "SELECT rev, client_id, client_seq FROM ops"
                " WHERE document_id = $1 AND rev > $2 AND rev <= $3 ORDER BY rev",
                item.doc_id,
                item.expected_rev,
                item.new_rev,
            )
        return [tuple(r) for r in rows] == [(s.rev, s.client_id, s.seq) for s in item.batch]

    # -- notifications ---------------------------------------------------------

    async def listen(
        self,
        callback: Callable[[str, int, int], None],
        *,
        on_reconnect: Callable[[], None] | None = None,
        on_room: Callable[[str, str, str], None] | None = None,
        on_peer: Callable[[str], None] | None = None,
    ) -> None:
        """Call ``callback(hub_id, doc_id, rev)`` for every commit by any hub, ours included,
        made while a hub other than its committer was registered (:meth:`register_hub`),
        and ``on_room(hub_id, room_id, event)`` for every change to a room (see ``ROOM_EVENTS``),
        and ``on_peer(payload)`` with every ``pairls_peers`` payload (``roster.py`` parses it).

        The listener has its own connection.  If it is lost, it is re-opened
        (with backoff) and *on_reconnect* is called: notifications sent
        meanwhile are lost, so the caller should catch up with ops_since
        (and read its rooms again).
        """
        self._callbacks.append(callback)
        if on_room is not None:
            self._room_callbacks.append(on_room)
        if on_peer is not None:
            self._peer_callbacks.append(on_peer)
        if on_reconnect is not None:
            self._on_reconnect.append(on_reconnect)
        if self._listen_conn is None:
            self._listen_conn = await self._connect_listener()

    async def _connect_listener(self) -> asyncpg.Connection:
        async with _db_errors("listen"):
            conn = await asyncpg.connect(
                self._dsn, server_settings={"application_name": f"pairls-hub {self.hub_id} listener"}
            )
            try:
                await conn.add_listener(CHANNEL, self._notified)
                await conn.add_listener(ROOMS_CHANNEL, self._room_notified)
                await conn.add_listener(roster.CHANNEL, self._peer_notified)
            except BaseException:
                await conn.close()
                raise
        conn.add_termination_listener(self._listener_lost)
        return conn

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        try:
            args = parse_ops_notification(payload)
        except ValueError:
            self.stats.malformed_notifications += 1
            logger.warning("ignoring a malformed %s notification", CHANNEL)
            return
        for cb in list(self._callbacks):
            try:
                cb(*args)
            except Exception:
                logger.exception("listen callback failed")

    def _room_notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        try:
            hub_id, room_id, event = payload.split(" ")
        except ValueError:
            self.stats.malformed_notifications += 1
            logger.warning("ignoring a malformed %s notification", ROOMS_CHANNEL)
            return
        for cb in list(self._room_callbacks):
            try:
                cb(hub_id, room_id, event)
            except Exception:
                logger.exception("room callback failed")

    def _peer_notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        for cb in list(self._peer_callbacks):
            try:
                cb(payload)
            except Exception:
                logger.exception("peer callback failed")

    def _listener_lost(self, conn: object) -> None:
        if self._closing or conn is not self._listen_conn:
            return
        logger.warning("lost the %s listener connection; reconnecting", CHANNEL)
        self._listen_conn = None
        self._listen_task = asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                self._listen_conn = await self._connect_listener()
            except StoreError as e:
                self.stats.listener_retries += 1
                logger.warning("listener reconnect failed (%s); retrying in %.1fs", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            logger.info("%s listener reconnected", CHANNEL)
            for cb in list(self._on_reconnect):
                try:
                    cb()
                except Exception:
                    logger.exception("on_reconnect callback failed")
            return
