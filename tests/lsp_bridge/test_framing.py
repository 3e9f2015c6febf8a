"""LSP's base protocol framing (lsp_bridge.framing), without I/O."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lsp_bridge.framing import MessageReader, content_length


def frame(body: bytes, *headers: bytes) -> bytes:
    return b"".join(h + b"\r\n" for h in headers or (b"Content-Length: %d" % len(body),)) + b"\r\n" + body


def test_a_body_comes_out_once_its_last_byte_is_in() -> None:
    body = '{"jsonrpc":"2.0","method":"initialized","params":{"é":"✓"}}'.encode()
    data = frame(body)
    reader = MessageReader()
    out = [reader.feed(data[i : i + 1]) for i in range(len(data))]
    assert out[-1] == [body]
    assert not any(out[:-1])


def test_several_messages_in_one_piece_and_headers_of_any_case() -> None:
    a, b, c = b'{"id":1}', b'{"id":2}', b"{}"
    data = (
        frame(a)
        + frame(b, b"content-length: 8", b"Content-Type: application/vscode-jsonrpc; charset=utf-8")
        + frame(c, b"Content-Type: x", b"CONTENT-LENGTH:2")
    )
    reader = MessageReader()
    assert reader.feed(data) == [a, b, c]
    assert reader.feed(b"") == []


def test_the_end_of_the_headers_split_between_pieces() -> None:
    data = frame(b'{"a":1}')
    end = data.index(b"\r\n\r\n")
    for cut in range(end, end + 4):
        reader = MessageReader()
        assert reader.feed(data[:cut]) == []
        assert reader.feed(data[cut:]) == [b'{"a":1}']


def test_headers_without_a_usable_length_are_skipped_and_counted() -> None:
    reader = MessageReader()
    good = frame(b'{"id":3}')
    bad = b"Content-Type: x\r\n\r\n" + b"Content-Length: -1\r\n\r\n" + b"Content-Length: x\r\n\r\n"
    out = reader.feed(bad + good)
    assert out == [b'{"id":3}']
    assert reader.skipped == 3


def test_a_large_body_in_many_pieces() -> None:
    body = b'{"text":"' + b"x" * 1_500_000 + b'"}'
    data = frame(body) + frame(b"{}")
    reader = MessageReader()
    out = []
    for i in range(0, len(data), 65536):
        out += reader.feed(data[i : i + 65536])
    assert out == [body, b"{}"]


def test_content_length_takes_the_last_one_given() -> None:
    assert content_length(b"Content-Length: 3\r\nContent-Length: 5") == 5
    assert content_length(b"Content-Length:  7 ") == 7
    assert content_length(b"Content-Lengthx: 7") is None
    assert content_length(b"") is None


@given(
    st.lists(st.binary(max_size=300), max_size=8),
    st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=50),
)
def test_any_cut_of_the_stream_gives_the_same_bodies(bodies: list[bytes], sizes: list[int]) -> None:
    data = b"".join(frame(b) for b in bodies)
    reader = MessageReader()
    out: list[bytes] = []
    i = 0
    k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out += reader.feed(data[i : i + n])
        i += n
        k += 1
    assert out == bodies
    assert reader.skipped == 0
