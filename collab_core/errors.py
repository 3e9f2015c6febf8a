"""Errors, refusal codes and close codes.

Exception tree::

    CollabError                 root of everything pairls raises on purpose
    ├── ProtocolError           a peer sent something the protocol forbids
    ├── Forbidden               the peer's role does not allow the request
    ├── QuotaExceeded           the request would pass one of the hub's quotas
    ├── InvalidState            misuse of an object by our own code
    └── StoreError              the database refused or failed
        ├── RevisionConflict    another hub committed the revision first
        └── DocumentGone        the document was deleted (its room was)

Peers never see exception text: they see an :class:`ErrorCode` (stable, in
``docs/protocol.md``) and a fixed human message chosen here, or a close with
one of the :class:`CloseCode` values.
"""

from __future__ import annotations

import enum


class CollabError(Exception):
    """Root of the pairls exception tree."""


class ProtocolError(CollabError):
    """A peer sent something the protocol forbids."""

    def __init__(self, code: ErrorCode, detail: str | None = None) -> None:
        super().__init__(detail or MESSAGES[code])
        self.code = code
        #: a short, fixed text that is safe to show the peer
        self.detail = detail or MESSAGES[code]
        #: the request's ``id``, ``seq`` and ``path``, where they are safe to echo
        #: (set by ``wire.decode`` when the frame was a JSON object)
        self.echo: dict[str, object] = {}


class Forbidden(ProtocolError):
    """The peer's role (or lack of one) does not allow the request."""


class QuotaExceeded(ProtocolError):
    """The request would pass one of the hub's quotas (rooms per hub, documents per room)."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(ErrorCode.QUOTA_EXCEEDED, detail)


class InvalidState(CollabError):
    """An object was used in a way its state does not allow (our bug)."""


class StoreError(CollabError):
    """The database refused or failed."""


class RevisionConflict(StoreError):
    """Another hub committed a revision this hub tried to commit."""


class DocumentGone(StoreError):
    """The document is not in the database any more: its room was deleted."""


class ErrorCode(enum.StrEnum):
    """Stable codes carried by ``error`` messages (docs/protocol.md)."""

    BAD_JSON = "bad_json"
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    NOT_HELLO = "not_hello"
    NOT_IN_ROOM = "not_in_room"
    ALREADY_IN_ROOM = "already_in_room"
    NO_SUCH_ROOM = "no_such_room"
    BAD_INVITE = "bad_invite"
    FORBIDDEN = "forbidden"
    NO_SUCH_PARTICIPANT = "no_such_participant"
    REMOVED = "removed"
    NO_SUCH_DOCUMENT = "no_such_document"
    DOCUMENT_EXISTS = "document_exists"
    BAD_PATH = "bad_path"
    NOT_OPEN = "not_open"
    INVALID_OP = "invalid_op"
    FUTURE_REVISION = "future_revision"
    REVISION_TOO_OLD = "revision_too_old"
    STALE_SEQ = "stale_seq"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    BAD_TOKEN = "bad_token"
    NOTHING_TO_UNDO = "nothing_to_undo"
    NOTHING_TO_REDO = "nothing_to_redo"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.BAD_JSON: "message is not valid JSON",
    ErrorCode.BAD_MESSAGE: "message does not match the protocol schema",
    ErrorCode.UNKNOWN_TYPE: "unknown message type",
    ErrorCode.UNSUPPORTED_VERSION: "unsupported protocol version",
    ErrorCode.NOT_HELLO: "the first message must be hello",
    ErrorCode.NOT_IN_ROOM: "join a room first",
    ErrorCode.ALREADY_IN_ROOM: "leave the current room first",
    ErrorCode.NO_SUCH_ROOM: "no such room",
    ErrorCode.BAD_INVITE: "invite is not valid for this room",
    ErrorCode.FORBIDDEN: "your role does not allow this",
    ErrorCode.NO_SUCH_PARTICIPANT: "no such participant in this room",
    ErrorCode.REMOVED: "the room's owner removed you or withdrew this invite; ask the owner for a new invite",
    ErrorCode.NO_SUCH_DOCUMENT: "no such document",
    ErrorCode.DOCUMENT_EXISTS: "document already exists",
    ErrorCode.BAD_PATH: "path must be relative, without '..', at most 1024 characters",
    ErrorCode.NOT_OPEN: "open the document first",
    ErrorCode.INVALID_OP: "operation does not fit the document",
    ErrorCode.FUTURE_REVISION: "base revision is newer than the document",
    ErrorCode.REVISION_TOO_OLD: "base revision is older than the hub keeps; reopen the document",
    ErrorCode.STALE_SEQ: "sequence number is older than the last one seen",
    ErrorCode.RATE_LIMITED: "too many messages; slow down",
    ErrorCode.TOO_LARGE: "too large: the message or the document would pass the hub's limit",
    ErrorCode.QUOTA_EXCEEDED: "over a quota of this hub",
    ErrorCode.BAD_TOKEN: "creating a room on this hub needs its create-room token",
    ErrorCode.NOTHING_TO_UNDO: "nothing of yours to undo in this document",
    ErrorCode.NOTHING_TO_REDO: "nothing of yours to redo in this document",
    ErrorCode.UNAVAILABLE: "the hub cannot serve this right now; retry",
    ErrorCode.INTERNAL: "internal error",
}


class CloseCode(enum.IntEnum):
    """WebSocket close codes the hub uses (RFC 6455 section 7.4; 4000-4999 private)."""

    GOING_AWAY = 1001  # hub shutting down: reconnect later
    INVALID_DATA = 1007  # a frame that is not UTF-8
    INTERNAL_ERROR = 1011  # the hub failed; nothing the client did
    REPLACED = 4409  # the same client id joined again on a newer connection
    PROTOCOL_VIOLATION = 4400  # the peer broke the protocol (see the reason)
    RATE_LIMIT = 4429  # the peer kept flooding after rate_limited errors
    TOO_SLOW = 4408  # the peer did not read what the hub sent it (its send buffer passed the limit)
    # The room's owner (or the hub's operator) ended the peer's place in the room;
    # none of these is worth reconnecting for with the same invite.
    INVITE_WITHDRAWN = 4401  # the invite the peer joined with was rotated
    REMOVED = 4403  # the owner removed (kicked) the peer
    ROOM_DELETED = 4410  # the room was deleted (by its owner, the operator, or for being idle)
    # 1009 (message too big) is sent by websockets itself above max_size.
    MESSAGE_TOO_BIG = 1009
