"""The LSP base protocol's framing, without I/O: bytes in, whole message bodies out.

LSP 3.17, "Base Protocol": a message is its headers (``Name: value`` lines,
each ended by ``\\r\\n``), an empty line, then a body of exactly
``Content-Length`` bytes.  :class:`MessageReader` takes what stdin gives, in
pieces of any size, and returns each body once it is whole; the server's
shell (``serve.py``) only reads and hands the bodies on.
"""

from __future__ import annotations

__all__ = ["MessageReader", "content_length"]

_END = b"\r\n\r\n"


def content_length(head: bytes) -> int | None:
    """The Content-Length of the headers *head* (the last one given), or None if there is
    no usable one (missing, not a number, negative)."""
    length = None
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return length if length is not None and length >= 0 else None


class MessageReader:
    """Message bodies out of a byte stream fed in pieces.

    ``feed(data)`` returns the bodies that *data* completed, in order.  Headers
    without a usable Content-Length are skipped (counted in :attr:`skipped`), as
    pygls's reader skips them: what follows is read as the next headers.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        #: the length of the body being read, once its headers are
        self._length: int | None = None
        #: no end of headers starts before this index of the buffer (where the search goes on)
        self._scanned = 0
        #: headers skipped for want of a usable Content-Length
        self.skipped = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        bodies: list[bytes] = []
        start = 0
        while True:
            if self._length is None:
                end = buf.find(_END, max(start, self._scanned))
                if end < 0:
                    # (a header's end may start in the last 3 bytes and finish in the next piece)
                    self._scanned = max(start, len(buf) - len(_END) + 1)
                    break
                length = content_length(bytes(buf[start:end]))
                start = end + len(_END)
                if length is None:
                    self.skipped += 1
                    continue
                self._length = length
            if len(buf) - start < self._length:
                break
            # (one copy: a slice of the bytearray would be a second; the view is gone at once)
            bodies.append(bytes(memoryview(buf)[start : start + self._length]))
            start += self._length
            self._length = None
        del buf[:start]
        self._scanned = max(0, self._scanned - start)
        return bodies
