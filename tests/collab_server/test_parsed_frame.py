"""The hub lets go of the last frame websockets' parser read (``hub._release_parsed_frame``),
on websockets' own sans-I/O protocols: no sockets."""

from __future__ import annotations

import gc
import tracemalloc

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from collab_server.hub import _release_parsed_frame


def _pair() -> tuple[ClientProtocol, ServerProtocol]:
    client = ClientProtocol(parse_uri("ws://hub/"), max_size=None)
    server = ServerProtocol(max_size=None)
    client.send_request(client.connect())
    _carry(client, server)
    (request,) = server.events_received()
    server.send_response(server.accept(request))
    _carry(server, client)
    client.events_received()
    assert server.state is State.OPEN and client.state is State.OPEN
    return client, server


def _carry(src: ClientProtocol | ServerProtocol, dst: ClientProtocol | ServerProtocol) -> None:
    dst.receive_data(b"".join(src.data_to_send()))


def _texts(server: ServerProtocol) -> list[str]:
    return [e.data.decode() for e in server.events_received() if isinstance(e, Frame)]


def test_the_parser_lets_go_of_a_big_frame_and_reads_on() -> None:
    client, server = _pair()
    tracemalloc.start()
    try:
        client.send_text(b"x" * 1_000_000)
        _carry(client, server)
        (frame,) = server.events_received()
        assert isinstance(frame, Frame) and len(frame.data) == 1_000_000
        del frame
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        assert _release_parsed_frame(server)
        gc.collect()
        freed = held - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert freed > 900_000, f"{freed} bytes freed"
    client.send_text(b"after")
    _carry(client, server)
    assert _texts(server) == ["after"]


def test_a_fragmented_message_reads_on_across_a_release() -> None:
    client, server = _pair()
    client.send_text(b"one ", fin=False)
    _carry(client, server)
    assert _release_parsed_frame(server)
    client.send_continuation(b"two", fin=True)
    _carry(client, server)
    frames = [e for e in server.events_received() if isinstance(e, Frame)]
    assert [(f.opcode, f.data, f.fin) for f in frames] == [
        (Opcode.TEXT, b"one ", False),
        (Opcode.CONT, b"two", True),
    ]


def test_a_release_mid_message_keeps_expecting_its_continuation() -> None:
    client, server = _pair()
    client.send_text(b"one ", fin=False)
    _carry(client, server)
    assert _release_parsed_frame(server)
    # a new message before the last one ended: refused, as without the release
    server.receive_data(Frame(Opcode.TEXT, b"two").serialize(mask=True))
    assert server.state is State.CLOSING
    assert server.close_sent is not None and server.close_sent.code == 1002


def test_no_release_with_part_of_the_next_frame_read() -> None:
    client, server = _pair()
    client.send_text(b"y" * 100)
    data = b"".join(client.data_to_send())
    server.receive_data(data[:10])
    assert not _release_parsed_frame(server)
    server.receive_data(data[10:])
    assert _texts(server) == ["y" * 100]


def test_no_release_once_the_connection_closes() -> None:
    client, server = _pair()
    client.send_close(1000)
    _carry(client, server)
    assert server.state is State.CLOSING
    assert not _release_parsed_frame(server)
    # a broken stream: the parser has failed and must stay failed
    _, server2 = _pair()
    server2.receive_data(b"\x8f\x80\x00\x00\x00\x00")  # a reserved opcode
    assert server2.parser_exc is not None
    assert not _release_parsed_frame(server2)
