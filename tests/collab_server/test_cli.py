"""``pairls-hub`` as a real subprocess: options, the listening line, embedded
PostgreSQL lifecycle, signals, shutdown with clients connected, and logs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psutil  # type: ignore[import-untyped,unused-ignore]
import pytest

from collab_server.cli import connect_hints, parse_args
from tests.support.http import get
from tests.support.hubclient import HubError, Peer
from tests.support.hubproc import HubProcess

pytestmark = pytest.mark.timeout(180)

HUB_SCRIPT = Path(sys.executable).parent / "pairls-hub"
LISTENING = re.compile(r"^listening on ws://127\.0\.0\.1:(\d+)$")


async def stop(hub: HubProcess, sig: signal.Signals = signal.SIGTERM) -> int:
    """Signal the hub and wait for it off the event loop (our peers must answer its close)."""
    if hub.proc.poll() is None:
        hub.proc.send_signal(sig)
    return await asyncio.to_thread(hub.proc.wait, 60)


async def start(hub: HubProcess) -> str:
    return await asyncio.to_thread(hub.wait_ready, 120)


def test_help_lists_the_options() -> None:
    assert HUB_SCRIPT.exists()
    out = subprocess.run([str(HUB_SCRIPT), "--help"], capture_output=True, text=True, timeout=60, check=True)
    for flag in (
        "--host",
        "--port",
        "--data-dir",
        "--database-url",
        "--log-level",
        "--max-document-bytes",
        "--max-op-components",
        "--transform-budget",
        "--create-token",
        "--max-rooms",
        "--max-documents-per-room",
        "--max-connections-per-address",
        "--bytes-per-second",
        "--address-bytes-per-second",
        "--max-history-bytes",
        "--max-send-buffer",
    ):
        assert flag in out.stdout
    mod = subprocess.run(
        [sys.executable, "-m", "collab_server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert mod.stdout == out.stdout


async def test_port_0_prints_one_listening_line_that_works(database_url: str) -> None:
    hub = HubProcess(database_url=database_url)
    try:
        url = await start(hub)
        p = await Peer(url, "Ada").connect()
        assert (await p.request({"type": "ping"}))["type"] == "pong"
        created = await p.create_room("r")
        assert len(created["room"]) == 22
        await p.close()
        assert await stop(hub) == 0
        matches = [m for m in map(LISTENING.match, hub.stdout) if m]
        assert len(matches) == 1, hub.stdout
        port = int(matches[0].group(1))
        assert port > 0 and url == f"ws://127.0.0.1:{port}"
    finally:
        hub.kill()


async def test_op_limits_from_the_command_line_reach_the_hub(database_url: str) -> None:
    hub = HubProcess("--max-op-components", "10", "--transform-budget", "30", database_url=database_url)
    try:
        url = await start(hub)
        p = await Peer(url, "Ada").connect(hello=False)
        welcome = await p.request({"type": "hello", "protocol": 1, "name": "Ada", "clientId": "ada-client"})
        assert welcome["limits"]["maxOpComponents"] == 10
        await p.create_room()
        await p.create_document("a.txt", "abcdef")
        doc = await p.open("a.txt")
        for _ in range(3):
            await doc.splice(0, 0, "x")
            await doc.wait_synced()
        await p.send({"type": "op", "path": "a.txt", "rev": 3, "seq": 10, "op": [1, "y"] * 5 + [1]})
        assert (await p.next_event("error"))["code"] == "too_large"  # 11 components
        # 3 ops back: 3 x (4 + 8) + 3 > 30
        await p.send({"type": "op", "path": "a.txt", "rev": 0, "seq": 10, "op": [1, "y", 1, "z"]})
        assert (await p.next_event("error"))["code"] == "revision_too_old"
        await p.close()
        assert await stop(hub) == 0
    finally:
        hub.kill()


async def test_startup_says_how_editors_connect(database_url: str) -> None:
    hub = HubProcess(database_url=database_url)
    try:
        url = await start(hub)
        for _ in range(100):  # the lines after the first come right after it
            if len(hub.stdout) >= 3:
                break
            await asyncio.sleep(0.05)
        status, _, body = await get(url.replace("ws://", "http://") + "/healthz")
        assert (status, body) == (200, "ok\n")
        assert await stop(hub) == 0
    finally:
        hub.kill()
    port = url.rsplit(":", 1)[1]
    assert hub.stdout == [
        f"listening on {url}",
        f"editors connect to {url}: set pairls.hubUrl to it in VS Code,"
        " or PAIRLS_HUB_URL for Neovim, Emacs and other editors",
        "only this machine can connect to 127.0.0.1; to let others in, listen on all interfaces:"
        f" pairls-hub --host 0.0.0.0 (and let port {port} through the firewall)",
    ]


def test_connect_hints_name_the_url_to_use_for_each_kind_of_host() -> None:
    import socket

    assert connect_hints("::1", 9000)[0].startswith("editors connect to ws://[::1]:9000: ")
    assert connect_hints("localhost", 1)[1].startswith("only this machine can connect to localhost;")
    for wildcard in ("0.0.0.0", "::"):
        url, invites = connect_hints(wildcard, 8765)  # no loopback warning
        assert url.startswith(f"editors connect to ws://{socket.gethostname()}:8765 (or ws://ADDRESS:8765 ")
        assert "pairls.hubUrl" in url and "PAIRLS_HUB_URL" in url
        assert "not 127.0.0.1" in invites
    (line,) = connect_hints("10.1.2.3", 8765)
    assert line.startswith("editors connect to ws://10.1.2.3:8765: set pairls.hubUrl")


# -- embedded PostgreSQL ------------------------------------------------------


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Live postgres processes whose command line names *data_dir* (the postmasters)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
        if "postgres" in (proc.info["name"] or "") and str(data_dir) in cmdline:
            found.append(proc)
    return found


def server_tree(data_dir: Path) -> list[psutil.Process]:
    """The postmaster(s) on *data_dir* and all their children (whose cmdlines do not name it)."""
    procs = postgres_processes(data_dir)
    for p in list(procs):
        try:
            procs.extend(p.children(recursive=True))
        except psutil.Error:
            pass
    return procs


def alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_embedded_postgres_starts_serves_and_stops(
    pg_tmp: Path, sig: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data = pg_tmp / "hub"
    room: dict[str, Any] = {}
    text = ""
    for run in range(2):  # the second run reuses the data dir
        hub = HubProcess("--data-dir", str(data))  # no database URL: DATABASE_URL is dropped too
        try:
            url = await start(hub)
            tree = server_tree(data)
            assert tree, "no PostgreSQL process names the data dir"
            p = await Peer(url, "Ada").connect()
            if run == 0:
                room = await p.create_room("kept")
                await p.create_document("kept.txt", "first run\n")
                doc = await p.open("kept.txt")
                await doc.splice(0, 0, "edited ")
                await doc.wait_synced()
                text = doc.text
            else:
                await p.join(room["room"], room["ownerSecret"])
                doc = await p.open("kept.txt")
                assert (doc.text, doc.rev) == (text, 1)
            await p.close()
            assert await stop(hub, sig) == 0, hub.log
        finally:
            hub.kill()
        assert not [p for p in tree if alive(p)], "PostgreSQL outlived the hub"
        assert postgres_processes(data) == []
        assert "Traceback" not in hub.log


# -- shutdown with clients connected -------------------------------------------

BURST = 600


async def test_sigterm_with_clients_acks_or_refuses_every_op(database_url: str) -> None:
    hub = HubProcess(database_url=database_url)
    try:
        url = await start(hub)
        a = await Peer(url, "Ada").connect()
        b = await Peer(url, "Bob").connect()
        created = await a.create_room()
        await a.create_document("d.txt", "")
        await b.join(created["room"], created["editorSecret"])
        bdoc = await b.open("d.txt")
        # opened by hand: acks and errors land in a.events, one per seq
        await a.request({"type": "open", "path": "d.txt"})
        for seq in range(1, BURST + 1):
            await a.send({"type": "op", "path": "d.txt", "rev": 0, "seq": seq, "op": [f"<{seq}>"]})
        hub.proc.send_signal(signal.SIGTERM)
        assert a.closed is not None and b.closed is not None
        assert (await asyncio.wait_for(a.closed, 30))[0] == 1001
        assert (await asyncio.wait_for(b.closed, 30))[0] == 1001
        assert await asyncio.to_thread(hub.proc.wait, 60) == 0
        acked = [m["seq"] for m in a.events["ack"]]
        refused = [m["seq"] for m in a.events["error"]]
        assert all(m["code"] == "unavailable" for m in a.events["error"]), a.events["error"]
        assert len(set(acked)) == len(acked) and len(set(refused)) == len(refused)
        assert not set(acked) & set(refused)
        # never silently dropped: every op sent before the signal got an answer
        assert sorted(acked + refused) == list(range(1, BURST + 1))
        assert bdoc.rev <= len(acked)
    finally:
        hub.kill()

    # the database holds exactly the acked ops
    again = HubProcess(database_url=database_url)
    try:
        url = await start(again)
        c = await Peer(url, "Cy").connect()
        await c.join(created["room"], created["viewerSecret"])
        reply = await c.request({"type": "open", "path": "d.txt"})
        applied = [int(s) for s in re.findall(r"<(\d+)>", reply["text"])]
        assert sorted(applied) == sorted(acked)
        assert reply["rev"] == len(acked)
        await c.close()
        assert await stop(again) == 0
    finally:
        again.kill()
    db = await asyncpg.connect(database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM ops") == len(acked)
    finally:
        await db.close()


# -- logs -------------------------------------------------------------------------


@pytest.mark.parametrize("log_format, level", [("text", "INFO"), ("json", "INFO"), ("text", "DEBUG")])
async def test_logs_hold_no_document_text_or_secrets(database_url: str, log_format: str, level: str) -> None:
    mark = "Lm" + uuid.uuid4().hex + "mL"
    hub = HubProcess("--log-level", level, "--log-format", log_format, database_url=database_url)
    try:
        url = await start(hub)
        a = await Peer(url, f"n{mark[:20]}").connect()
        b = await Peer(url, "Bob").connect()
        created = await a.create_room(f"room {mark}")
        await a.create_document("m.txt", f"text {mark}\n")
        await b.join(created["room"], created["editorSecret"])
        doc = await a.open("m.txt")
        await doc.splice(0, 0, f"edit {mark}")
        await doc.wait_synced()
        await a.send({"type": "presence", "path": "m.txt", "rev": doc.rev, "ranges": [[0, 1]]})
        # bad input that carries them too
        await a.send_raw("{" + mark)
        await a.send({"type": mark, "secret": created["ownerSecret"]})
        with pytest.raises(HubError):
            await b.request({"type": "open", "path": "../" + mark})
        c = await Peer(url, "Cy").connect()
        with pytest.raises(HubError):
            wrong = created["viewerSecret"][:-1] + ("B" if created["viewerSecret"].endswith("A") else "A")
            await c.join(created["room"], wrong)
        await c.join(created["room"], created["viewerSecret"])
        for p in (a, b, c):
            await p.close()
        assert await stop(hub) == 0
    finally:
        hub.kill()
    log = hub.log
    assert "created a room" in log and "joined as editor" in log  # INFO lines are there
    for secret in (mark, created["ownerSecret"], created["editorSecret"], created["viewerSecret"]):
        assert secret not in log
    assert mark[:20] not in log
    if log_format == "json":
        lines = [json.loads(line) for line in hub.stderr]  # every line is one JSON object
        assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]) for line in lines)
        joined = [line for line in lines if line["message"] == "joined as editor"]
        assert (
            len(joined) == 1 and joined[0]["level"] == "INFO" and joined[0]["logger"] == "collab_server.hub"
        )
        # the connection's room (a prefix of its id) and participant, as fields of their own
        assert created["room"].startswith(joined[0]["room"]) and joined[0]["participant"] == b.participant
        connected = [line for line in lines if line["message"] == "connected"]
        assert {line["participant"] for line in connected} == {a.participant, b.participant, c.participant}
        assert not [line for line in lines if "room" in line and "participant" not in line]
    else:
        assert f"[{created['room'][:8]}/{b.participant}] joined as editor" in log


# -- admission ------------------------------------------------------------------------------------

CREATE_TOKEN = "cli-token-" + uuid.uuid4().hex
#: the token with its last character changed (a uuid's hex ends in "0" one time in 16)
WRONG_TOKEN = CREATE_TOKEN[:-1] + ("1" if CREATE_TOKEN.endswith("0") else "0")
OPEN_WARNING = "without --create-token"


async def log_line(hub: HubProcess, text: str, timeout: float = 30) -> bool:
    """Whether *text* shows in the hub's stderr (read by a thread: wait for it, up to *timeout*)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in hub.log:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_a_non_loopback_listen_without_a_token_warns_loudly(database_url: str) -> None:
    hub = HubProcess("--host", "0.0.0.0", database_url=database_url, env={"PAIRLS_CREATE_TOKEN": ""})
    try:
        url = await start(hub)
        assert await log_line(hub, OPEN_WARNING)
        line = next(x for x in hub.stderr if OPEN_WARNING in x)
        assert "WARNING" in line and "--create-token" in line and "PAIRLS_CREATE_TOKEN" in line
        p = await Peer(url, "Ada").connect()
        await p.create_room()  # it warns, and serves
        await p.close()
        assert await stop(hub) == 0
    finally:
        hub.kill()


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
async def test_a_create_token_from_the_environment_is_required_and_silences_the_warning(
    database_url: str, host: str
) -> None:
    hub = HubProcess(
        "--host",
        host,
        "--log-level",
        "INFO",
        database_url=database_url,
        env={"PAIRLS_CREATE_TOKEN": CREATE_TOKEN},
    )
    try:
        url = await start(hub)
        p = await Peer(url, "Ada").connect()
        for token in (None, WRONG_TOKEN):
            try:
                room = await p.create_room(token=token)
            except HubError as exc:
                assert exc.code == "bad_token"
            else:
                pytest.fail(
                    f"a room was created at {url} with token {token!r}: {room}\nthe hub's log:\n{hub.log}"
                )
        created = await p.create_room(token=CREATE_TOKEN)
        assert created["role"] == "owner"
        await p.close()
        assert await stop(hub) == 0
        assert await log_line(hub, "stopped")
    finally:
        hub.kill()
    assert OPEN_WARNING not in hub.log
    assert CREATE_TOKEN not in hub.log and CREATE_TOKEN[:-1] not in hub.log
    assert "refused create_room" in hub.log


async def test_loopback_without_a_token_does_not_warn(database_url: str) -> None:
    hub = HubProcess(database_url=database_url, env={"PAIRLS_CREATE_TOKEN": ""})
    try:
        await start(hub)
        assert await stop(hub) == 0
        assert await log_line(hub, "stopped")
    finally:
        hub.kill()
    assert OPEN_WARNING not in hub.log


# -- rooms: the operator's commands, and the idle sweep ---------------------------


def hub_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, **(env or {}))
    if env is None or "DATABASE_URL" not in env:
        full_env.pop("DATABASE_URL", None)
    return subprocess.run(
        [str(HUB_SCRIPT), *args], capture_output=True, text=True, timeout=120, env=full_env, check=False
    )


async def room_rows(database_url: str, room: str) -> int:
    db = await asyncpg.connect(database_url)
    try:
        docs = "(SELECT id FROM documents WHERE room_id = $1)"
        n = await db.fetchval(
            "SELECT (SELECT count(*) FROM rooms WHERE id = $1)"
            " + (SELECT count(*) FROM invites WHERE room_id = $1)"
            " + (SELECT count(*) FROM members WHERE room_id = $1)"
            " + (SELECT count(*) FROM documents WHERE room_id = $1)"
            f" + (SELECT count(*) FROM ops WHERE document_id IN {docs})"
            f" + (SELECT count(*) FROM snapshots WHERE document_id IN {docs})",
            room,
        )
        return int(n)
    finally:
        await db.close()


def test_a_room_id_that_begins_with_a_dash_is_the_operand_of_rooms_delete() -> None:
    for argv in (
        ["rooms", "delete", "-abc_DEF", "--database-url", "postgresql://x/y"],
        ["rooms", "delete", "--database-url", "postgresql://x/y", "-abc_DEF"],
        ["rooms", "delete", "--database-url=postgresql://x/y", "--", "-abc_DEF"],
    ):
        args = parse_args(argv)
        assert (args.command, args.action, args.room, args.database_url) == (
            "rooms",
            "delete",
            "-abc_DEF",
            "postgresql://x/y",
        )


async def test_rooms_list_and_delete_and_the_idle_sweep_as_processes(database_url: str) -> None:
    mark = "Rm" + uuid.uuid4().hex + "mR"
    hub = HubProcess("--room-ttl", "2s", database_url=database_url)
    try:
        url = await start(hub)
        owner = await Peer(url, "Ada").connect()
        room = await owner.create_room("design review")
        await owner.create_document("notes.md", f"secret text {mark}\n")
        doc = await owner.open("notes.md")
        await doc.splice(0, 0, "# ")
        await doc.wait_synced()
        guest = await Peer(url, "Bob").connect()
        await guest.join(room["room"], room["editorSecret"])
        rotated = await owner.request({"type": "rotate_invites"})  # (Bob joined before: he is closed)
        assert guest.closed is not None and (await asyncio.wait_for(guest.closed, 30))[0] == 4401
        guest = await Peer(url, "Bob").connect()
        await guest.join(room["room"], rotated["editorSecret"])
        idle = await Peer(url, "Cy").connect()
        idle_room = await idle.create_room("left alone")
        await idle.close()
        # --room-ttl 2s: the room nobody is in goes, the one in use stays
        for _ in range(600):
            if await room_rows(database_url, idle_room["room"]) == 0:
                break
            await asyncio.sleep(0.05)
        assert await room_rows(database_url, idle_room["room"]) == 0
        assert await room_rows(database_url, room["room"]) > 0

        listed = await asyncio.to_thread(hub_command, "rooms", "list", "--database-url", database_url)
        assert listed.returncode == 0, listed.stderr
        header, line, total = listed.stdout.splitlines()
        assert header.split()[:4] == ["ROOM", "NAME", "DOCUMENTS", "BYTES"] and total == "1 room"
        assert line.startswith(room["room"]) and "design review" in line
        as_json = await asyncio.to_thread(
            hub_command, "rooms", "list", "--json", env={"DATABASE_URL": database_url}
        )
        (row,) = [json.loads(x) for x in as_json.stdout.splitlines()]
        assert row["id"] == room["room"] and row["name"] == "design review" and row["documents"] == 1
        assert row["bytes"] >= len(f"secret text {mark}\n") and row["lastActive"]
        for out in (listed.stdout + listed.stderr, as_json.stdout + as_json.stderr):
            for secret in (mark, room["ownerSecret"], room["editorSecret"], rotated["editorSecret"]):
                assert secret not in out

        deleted = await asyncio.to_thread(
            hub_command, "rooms", "delete", room["room"], "--database-url", database_url
        )
        assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted room {room['room']}", deleted
        for p in (owner, guest):
            assert p.closed is not None
            assert await asyncio.wait_for(p.closed, 30) == (4410, "room deleted by the hub's operator")
        assert await room_rows(database_url, room["room"]) == 0
        again = await asyncio.to_thread(
            hub_command, "rooms", "delete", room["room"], "--database-url", database_url
        )
        assert again.returncode == 1 and "no room" in again.stderr
        assert await stop(hub) == 0
    finally:
        hub.kill()
    for secret in (mark, rotated["editorSecret"], rotated["viewerSecret"]):
        assert secret not in hub.log
    assert "Traceback" not in hub.log


async def test_rooms_on_the_embedded_database_with_and_without_a_hub(
    pg_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data = pg_tmp / "hub"
    nothing = await asyncio.to_thread(hub_command, "rooms", "list", "--data-dir", str(data))
    assert nothing.returncode == 1 and "no hub database" in nothing.stderr
    hub = HubProcess("--data-dir", str(data))
    try:
        url = await start(hub)
        p = await Peer(url, "Ada").connect()
        room = await p.create_room("embedded")
        # while the hub runs: its PostgreSQL is used, and left running
        listed = await asyncio.to_thread(hub_command, "rooms", "list", "--data-dir", str(data))
        assert listed.returncode == 0 and room["room"] in listed.stdout, listed
        assert (await p.request({"type": "ping"}))["type"] == "pong"
        await p.close()
        assert await stop(hub) == 0
    finally:
        hub.kill()
    assert postgres_processes(data) == []
    # without a hub: started for the command, and stopped after it
    deleted = await asyncio.to_thread(hub_command, "rooms", "delete", room["room"], "--data-dir", str(data))
    assert deleted.returncode == 0, deleted.stderr
    assert postgres_processes(data) == []
    listed = await asyncio.to_thread(hub_command, "rooms", "list", "--data-dir", str(data))
    assert (
        listed.returncode == 0
        and listed.stdout.strip() == "ROOM  NAME  DOCUMENTS  BYTES  LAST ACTIVE\n0 rooms"
    )
