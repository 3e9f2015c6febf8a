"""Hub soak: many connections for a long time; does the hub's memory stay flat?

A real ``pairls-hub`` (its embedded PostgreSQL) serves ``--conns`` connections in
rooms of ``--per-room``; one member of each room types (``--typing`` rooms, a key
every ``--key-interval`` seconds, each waiting for its ack), the others have the
document open and receive every op; and ``--churn`` connections a second leave and
come back as new clients. All of them come from this one address, as they do to a
hub behind a proxy: the soak starts its hub with ``--max-connections-per-address``
raised to ``--per-address`` (the connections plus some room), what an operator
behind a proxy does too. The hub's RSS is sampled every ``--sample`` seconds;
growth compares the median of the minute after the warm-up with the median of the
last minute.  The warm-up lasts ``--warmup`` seconds and, beyond that, until the
hub's op history is full (``pairls_history_bytes`` grows less than 1% in a
minute): the history is bounded (``--history`` ops a document, ``--max-history-bytes``
in all) but at 100 typists it takes about ten minutes to fill, and memory that
grows until a bound is not a leak.  The RSS at ``--warmup`` is reported too.
Every room's texts are compared at the end (no lost or doubled edit).

    make soak-hub                           # 30 minutes, 1,000 connections, 100 typing (make soak: and more)
    python bench/soak.py --duration 120     # a short look

Prints a Markdown section (``--out FILE`` appends it to FILE too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402

from tests.support.hubclient import HubError, Peer, SharedDoc  # noqa: E402
from tests.support.hubproc import HubProcess  # noqa: E402

PATH = "soak.py"


@dataclass
class Member:
    peer: Peer
    doc: SharedDoc
    #: when its connection closed (time.monotonic()), whoever closed it
    closed_at: float | None = None

    def __post_init__(self) -> None:
        if self.peer.closed is not None:
            self.peer.closed.add_done_callback(lambda _: setattr(self, "closed_at", time.monotonic()))


@dataclass
class Room:
    room_id: str
    secret: str
    typist: Member
    members: list[Member] = field(default_factory=list)
    keys: int = 0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    #: connections the hub refused at the handshake (HTTP 429: the per-address quota)
    refused_connections: int = 0
    #: connections that closed without the soak closing them, by close code
    disconnects: dict[str, int] = field(default_factory=dict)
    #: when they closed (seconds into the load)
    lost_at: list[float] = field(default_factory=list)
    started: float = 0.0
    churned: int = 0
    errors: list[str] = field(default_factory=list)


async def join(url: str, room: Room, name: str) -> Member:
    peer = await Peer(url, name).connect()
    await peer.join(room.room_id, room.secret)
    return Member(peer, await peer.open(PATH))


async def make_room(url: str, i: int) -> Room:
    peer = await Peer(url, f"typist-{i}").connect()
    created = await peer.create_room(f"soak-{i}")
    await peer.create_document(PATH, "")
    typist = Member(peer, await peer.open(PATH))
    return Room(created["room"], created["editorSecret"], typist)


async def type_keys(room: Room, interval: float, stop: float, tally: Tally, rng: random.Random) -> None:
    doc = room.typist.doc
    while time.monotonic() < stop:
        await asyncio.sleep(interval * rng.uniform(0.5, 1.5))
        text = doc.text
        if len(text) > 20_000 and rng.random() < 0.5:
            pos = rng.randrange(len(text) - 50)
            await doc.splice(pos, 40, "")
        else:
            await doc.splice(rng.randint(0, len(text)), 0, rng.choice("abcdefgh \n"))
        started = time.monotonic()
        try:
            await doc.wait_synced(30)
        except TimeoutError:
            tally.errors.append(f"room {room.room_id[:6]}: no ack in 30 s")
            continue
        tally.latencies.append(time.monotonic() - started)
        room.keys += 1
        tally.refused += len(doc.errors)
        doc.errors.clear()


async def churn(
    url: str, rooms: list[Room], per_second: float, stop: float, tally: Tally, rng: random.Random
) -> None:
    if per_second <= 0:
        return
    while time.monotonic() < stop:
        await asyncio.sleep(1.0 / per_second)
        room = rng.choice(rooms)
        if not room.members:
            continue
        old = room.members.pop(rng.randrange(len(room.members)))
        count_lost(old, tally)
        await old.peer.close()
        try:
            room.members.append(await join(url, room, f"churn-{tally.churned}"))
            tally.churned += 1
        except InvalidStatus as exc:
            tally.refused_connections += 1
            tally.errors.append(f"churn join: HTTP {exc.response.status_code}")
        except (HubError, OSError, TimeoutError) as exc:
            tally.errors.append(f"churn join: {type(exc).__name__}")


def lost(member: Member) -> bool:
    closed = member.peer.closed
    return closed is not None and closed.done()


def count_lost(member: Member, tally: Tally) -> None:
    """A connection that closed before the soak closed it: a disconnect (4408: too slow; 1011:
    a keepalive ping not answered in time; None: no close frame)."""
    if lost(member):
        assert member.peer.closed is not None and member.peer.ws is not None
        code = f"received {member.peer.closed.result()[0]}"
        error = member.peer.reader_error
        if error is not None:
            code += f", reader stopped by {type(error).__name__}: {error}"
        sent = member.peer.ws.protocol.close_sent
        if sent is not None:
            code += f", sent {sent.code} {sent.reason!r}"  # e.g. 1011: our keepalive ping went unanswered
        tally.disconnects[code] = tally.disconnects.get(code, 0) + 1
        tally.lost_at.append(round((member.closed_at or time.monotonic()) - tally.started))


def scrape(url: str) -> dict[str, float]:
    """The hub's ``GET /metrics``, the samples without labels (name -> value)."""
    http = url.replace("ws://", "http://", 1).rstrip("/") + "/metrics"
    with urllib.request.urlopen(http, timeout=10) as reply:
        body = reply.read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        name, _, value = line.partition(" ")
        if line and not line.startswith("#") and "{" not in name:
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


async def watch_lag(stop: float, out: list[float]) -> None:
    """This process's event loop: how late a 0.1 s sleep wakes up, at most (out[0], seconds)."""
    loop = asyncio.get_running_loop()
    while loop.time() < stop:
        due = loop.time() + 0.1
        await asyncio.sleep(0.1)
        out[0] = max(out[0], loop.time() - due)


async def sample_rss(
    pid: int, url: str, every: float, stop: float, out: list[tuple[float, int]], history: list[float]
) -> None:
    """RSS every *every* seconds, and the hub's op history in bytes (``pairls_history_bytes``)."""
    proc = psutil.Process(pid)
    t0 = time.monotonic()
    while True:
        out.append((time.monotonic() - t0, proc.memory_info().rss))
        try:
            history.append((await asyncio.to_thread(scrape, url)).get("pairls_history_bytes", 0.0))
        except OSError:
            history.append(float("nan"))
        if time.monotonic() >= stop:
            return
        await asyncio.sleep(min(every, max(0.0, stop - time.monotonic())))


def history_full_at(samples: list[tuple[float, int]], history: list[float]) -> float | None:
    """The first sample time after which the op history grew less than 1% in the next minute."""
    for i, (t, _) in enumerate(samples):
        later = [h for (u, _), h in zip(samples, history, strict=True) if u >= t + 60]
        if not later:
            return None
        if history[i] > 0 and later[0] <= history[i] * 1.01:
            return t
    return None


def median_between(samples: list[tuple[float, int]], start: float, end: float) -> float:
    window = [rss for t, rss in samples if start <= t <= end]
    return statistics.median(window) if window else float("nan")


def data_dir() -> Path:
    data = Path(tempfile.mkdtemp(prefix="pairls-soak-"))
    data.chmod(0o711)  # the embedded PostgreSQL's own user walks into it when run as root
    return data


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = data_dir()
    # the soak is one address standing in for a proxy's thousand users
    per_address = args.per_address if args.per_address >= 0 else args.conns + 64
    hub_args = ["--data-dir", str(data / "hub"), "--max-connections-per-address", str(per_address)]
    hub_args += args.hub_arg
    rng = random.Random(args.seed)
    tally = Tally()
    with HubProcess(*hub_args) as hub:
        url = hub.url
        n_rooms = max(1, args.conns // args.per_room)
        rooms = []
        for i in range(n_rooms):
            rooms.append(await make_room(url, i))
        for room in rooms:
            room.members = list(
                await asyncio.gather(*(join(url, room, f"m{j}") for j in range(args.per_room - 1)))
            )
        connections = sum(1 + len(r.members) for r in rooms)
        print(f"soak: {connections} connections in {n_rooms} rooms", file=sys.stderr)
        typing = rooms[: args.typing]
        samples: list[tuple[float, int]] = []
        history: list[float] = []
        before = await asyncio.to_thread(scrape, url)
        tally.started = time.monotonic()
        stop = tally.started + args.duration
        soak_lag = [0.0]
        tasks = [sample_rss(hub.proc.pid, url, args.sample, stop, samples, history)]
        tasks.append(watch_lag(asyncio.get_running_loop().time() + args.duration, soak_lag))
        tasks += [type_keys(r, args.key_interval, stop, tally, random.Random(rng.random())) for r in typing]
        tasks.append(churn(url, rooms, args.churn, stop, tally, rng))
        await asyncio.gather(*tasks)
        after = await asyncio.to_thread(scrape, url)
        # every copy of every typed document the same as the typist's (a connection that
        # was closed is counted as a disconnect, and its copy is not waited for)
        for room in rooms:
            for m in (room.typist, *room.members):
                count_lost(m, tally)

        async def check(room: Room) -> int:
            if lost(room.typist):
                return 0
            await room.typist.doc.wait_synced(60)
            live = [m for m in room.members if not lost(m)]
            with contextlib.suppress(TimeoutError):
                await asyncio.gather(*(m.doc.wait_rev(room.typist.doc.rev, 60) for m in live))
            return sum(m.doc.text != room.typist.doc.text for m in live)

        diverged = sum(await asyncio.gather(*(check(r) for r in typing)))
        for room in rooms:
            await asyncio.gather(room.typist.peer.close(), *(m.peer.close() for m in room.members))
        hub_alive = hub.proc.poll() is None
        log_tracebacks = hub.log.count("Traceback")
        hub_log = list(hub.stderr)
    end = samples[-1][0]
    full = history_full_at(samples, history)
    start = args.warmup if full is None or full + 60 > end - 60 else max(args.warmup, full)
    early = median_between(samples, args.warmup, args.warmup + 60)
    base = median_between(samples, start, start + 60)
    final = median_between(samples, end - 60, end)
    lat = sorted(tally.latencies)
    return {
        "connections": connections,
        "rooms": n_rooms,
        "typing": len(typing),
        "duration_s": round(end),
        "keys": len(lat),
        "ack_p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
        "ack_p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1) if lat else None,
        "refused": tally.refused,
        "refused_connections": tally.refused_connections,
        "disconnects": tally.disconnects,
        "per_address": per_address,
        "lost_at_s": sorted(tally.lost_at),
        "hub_max_loop_lag_ms": round(after.get("pairls_max_loop_lag_seconds", float("nan")) * 1e3, 1),
        "soak_max_loop_lag_ms": round(soak_lag[0] * 1e3, 1),
        "hub_log_keepalive": [line for line in hub_log if "keepalive" in line or "ping" in line][:5],
        "churned": tally.churned,
        "errors": tally.errors[:10],
        "error_count": len(tally.errors),
        "diverged": diverged,
        "history_full_s": None if full is None else round(full),
        "baseline_s": round(start),
        "rss_warmup_mb": round(early / 2**20, 1),
        "rss_growth_from_warmup_pct": round((final - early) / early * 100, 1),
        "rss_base_mb": round(base / 2**20, 1),
        "rss_end_mb": round(final / 2**20, 1),
        "rss_growth_pct": round((final - base) / base * 100, 1),
        "ops_committed": round(
            after.get("pairls_ops_committed_total", 0) - before.get("pairls_ops_committed_total", 0)
        ),
        "history_mb": [round(h / 2**20, 1) for h in history[:: max(1, len(history) // 30)]],
        "rss_peak_mb": round(max(r for _, r in samples) / 2**20, 1),
        "hub_alive": hub_alive,
        "hub_tracebacks": log_tracebacks,
        "samples": [(round(t), round(r / 2**20, 1)) for t, r in samples[:: max(1, len(samples) // 30)]],
    }


def passed(res: dict[str, Any]) -> bool:
    return bool(
        res["rss_growth_pct"] < 10
        and not res["diverged"]
        and res["hub_alive"]
        and not res["error_count"]
        and not res["disconnects"]
        and not res["refused_connections"]
    )


def render(res: dict[str, Any], args: argparse.Namespace) -> str:
    ok = passed(res)
    full_at = "not within the run" if res["history_full_s"] is None else f"{res['history_full_s']} s"
    lines = [
        f"### Hub soak ({time.strftime('%Y-%m-%d')}, {platform.node()}, {psutil.cpu_count()} cores)",
        "",
        f"`python bench/soak.py --duration {args.duration:g} --conns {args.conns} --per-room {args.per_room} "
        f"--typing {args.typing} --key-interval {args.key_interval:g} --churn {args.churn:g}` "
        f"(its hub: `--max-connections-per-address {res['per_address']}`)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| connections / rooms / typing | {res['connections']} / {res['rooms']} / {res['typing']} |",
        f"| duration | {res['duration_s']} s |",
        f"| keys typed (each acked) / ops committed by the hub | {res['keys']} / {res['ops_committed']} |",
        f"| ack latency p50 / p99 | {res['ack_p50_ms']} ms / {res['ack_p99_ms']} ms |",
        f"| connections replaced (churn) | {res['churned']} |",
        f"| op history full (grows < 1% a minute) at | {full_at} |",
        f"| hub RSS at {args.warmup:.0f} s / after warm-up ({res['baseline_s']} s) / at the end / peak | "
        f"{res['rss_warmup_mb']} / {res['rss_base_mb']} / {res['rss_end_mb']} / {res['rss_peak_mb']} MB |",
        f"| **RSS growth** after warm-up (target < 10%) | **{res['rss_growth_pct']}%** "
        f"{'(met)' if ok else '(MISSED)'} |",
        f"| RSS growth from {args.warmup:.0f} s (the history filling up included) | "
        f"{res['rss_growth_from_warmup_pct']}% |",
        f"| refused ops, errors, diverged copies | {res['refused']}, {res['error_count']}, "
        f"{res['diverged']} |",
        f"| connections refused (HTTP 429) / closed by the hub (by close code) | "
        f"{res['refused_connections']} / {res['disconnects'] or 'none'}"
        + (f" (at {', '.join(str(t) for t in res['lost_at_s'])} s)" if res["lost_at_s"] else "")
        + " |",
        f"| event loop at most late: the hub's / the soak's (all its clients) | "
        f"{res['hub_max_loop_lag_ms']} / {res['soak_max_loop_lag_ms']} ms |",
        f"| load average at the end (1 / 5 / 15 min; the machine is shared) | "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} |",
        f"| hub alive at the end, tracebacks in its log | {res['hub_alive']}, {res['hub_tracebacks']} |",
        "",
        "RSS (MB) over time: " + ", ".join(f"{t}s {r}" for t, r in res["samples"]),
        "",
        "op history held (pairls_history_bytes, MB), the same times: "
        + ", ".join(f"{h}" for h in res["history_mb"]),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds of load")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--per-room", type=int, default=10)
    ap.add_argument("--typing", type=int, default=100, help="rooms with a typist")
    ap.add_argument("--key-interval", type=float, default=0.25, help="seconds between a typist's keys")
    ap.add_argument("--churn", type=float, default=1.0, help="connections replaced per second")
    ap.add_argument("--warmup", type=float, default=120.0, help="seconds before the RSS baseline")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--per-address",
        type=int,
        default=-1,
        help="the hub's --max-connections-per-address: every connection of the soak comes from one "
        "address, as every client of a hub behind a proxy comes from the proxy's, and an operator "
        "there raises it the same way (default: --conns + 64; 0: no limit)",
    )
    ap.add_argument("--hub-arg", action="append", default=[], help="extra pairls-hub argument (repeat)")
    ap.add_argument("--out", default="", help="append the Markdown section to this file")
    ap.add_argument("--json", default="", help="write the raw results here")
    args = ap.parse_args()
    args.warmup = min(args.warmup, args.duration / 3)
    res = asyncio.run(run(args))
    text = render(res, args)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    ok = passed(res)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
