"""Plain HTTP GETs to a hub's port (``/healthz``, ``/metrics``), and Prometheus text parsed."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# no proxy from the environment: the hub is on 127.0.0.1
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


async def get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of ``GET url``, run off the event loop (the hub may be on it)."""

    def run() -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with _OPENER.open(request, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    return await asyncio.to_thread(run)


def samples(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text exposition: ``name`` or ``name{label="v",...}`` -> value."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def scrape(base: str) -> dict[str, float]:
    """GET *base*/metrics (base is ``http://HOST:PORT``), checked and parsed."""
    status, headers, body = await get(base + "/metrics")
    assert status == 200, (status, body)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    return samples(body)
