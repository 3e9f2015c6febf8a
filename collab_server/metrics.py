"""The hub's Prometheus metrics, served at ``GET /metrics`` on its port.

Each :class:`~collab_server.hub.Hub` has its own :class:`HubMetrics` and so
its own ``CollectorRegistry`` (never the global one): several hubs in one
process, as in the tests, do not clash.

Nothing here is on the hub's hot path.  The counters are the plain integers
the hub and the store already keep (:class:`~collab_server.hub.HubStats`,
:class:`~collab_server.store.StoreStats`) and the gauges are the sizes of
the hub's own tables; both are read only when someone scrapes.  The two
histograms are observed once per group-commit transaction, not per op.

Labels never carry room ids, paths, names or anything a client chose: the
only label is ``code``, an :class:`~collab_core.errors.ErrorCode`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["HubMetrics"]

#: seconds; a commit is one round trip with a WAL flush: typically 0.2 to 20 ms
COMMIT_SECONDS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: ops per transaction: one keystroke alone up to a burst of many documents
COMMIT_OPS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class HubMetrics:
    """The metrics of one hub; :meth:`render` is the body of ``GET /metrics``."""

    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry()
        self.commit_seconds = Histogram(
            "pairls_commit_seconds",
            "Duration of the store's group-commit transactions (one statement, one round trip)",
            buckets=COMMIT_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.commit_batch_ops = Histogram(
            "pairls_commit_batch_ops",
            "Ops carried by each group-commit transaction",
            buckets=COMMIT_OPS_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_HubCollector(hub))
        ProcessCollector(registry=self.registry)
        # python_gc_collections_total{generation} and what they collected
        GCCollector(registry=self.registry)

    def commit_observed(self, seconds: float, ops: int) -> None:
        """A :data:`~collab_server.store.CommitObserver`: one group commit took *seconds* for *ops*."""
        self.commit_seconds.observe(seconds)
        self.commit_batch_ops.observe(ops)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """(body, content type): the Prometheus text format, or OpenMetrics if *accept* asks for it."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class _HubCollector(Collector):
    """Reads the hub's tables and stats counters at scrape time."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        stats = hub.stats
        store = hub.store.stats
        yield GaugeMetricFamily(
            "pairls_connections", "Open WebSocket connections", value=len(hub.connections)
        )
        yield GaugeMetricFamily(
            "pairls_rooms", "Rooms with someone connected to this hub", value=len(hub.rooms)
        )
        yield GaugeMetricFamily(
            "pairls_documents", "Documents loaded in memory (open in some room)", value=len(hub.docs_by_id)
        )
        yield GaugeMetricFamily(
            "pairls_history_bytes",
            "Bytes of op history all documents keep in memory (--max-history-bytes)",
            value=hub.history.used,
        )
        yield GaugeMetricFamily(
            "pairls_history_indexes",
            "Documents whose history index (history, blame, undo) is in memory",
            value=len(hub.indexes),
        )
        yield GaugeMetricFamily(
            "pairls_history_index_bytes",
            "Bytes the history indexes take, about (--max-index-bytes)",
            value=hub.indexes.used,
        )
        peers = hub.peers.roster
        yield GaugeMetricFamily(
            "pairls_remote_participants",
            "Participants of this hub's rooms connected to other hubs on the database",
            value=peers.remote_count(),
        )
        counters: list[tuple[str, str, float]] = [
            ("pairls_ops_committed", "Ops committed to PostgreSQL by this hub", store.ops),
            ("pairls_received_frames", "WebSocket messages received from clients", stats.frames_received),
            ("pairls_received_bytes", "Payload bytes of the messages received", stats.bytes_received),
            ("pairls_sent_frames", "WebSocket messages queued to clients", stats.frames_sent),
            ("pairls_sent_bytes", "Payload bytes of the messages queued to clients", stats.bytes_sent),
            (
                "pairls_revision_conflicts",
                "Commits lost to another hub (the ops were transformed and committed again)",
                store.conflicts,
            ),
            (
                "pairls_store_retries",
                "Store calls of document tasks that failed and were tried again",
                stats.store_retries,
            ),
            (
                "pairls_commit_retries",
                "Commits of a batch that failed and were tried again",
                stats.commit_retries,
            ),
            (
                "pairls_unavailable_requests",
                "Requests answered unavailable because a store call failed",
                stats.unavailable_requests,
            ),
            ("pairls_failed_loads", "Document loads given up (their opens were refused)", stats.failed_loads),
            (
                "pairls_internal_errors",
                "Requests answered internal because handling them failed (a hub bug)",
                stats.internal_errors,
            ),
            (
                "pairls_document_crashes",
                "Document tasks that died; their members were told to reopen (a hub bug)",
                stats.document_crashes,
            ),
            (
                "pairls_send_failures",
                "Frames the hub could not send; each closed its connection with 1011 (a hub bug)",
                stats.send_failures,
            ),
            (
                "pairls_connection_crashes",
                "Connections whose handling failed outside a request; each closed with 1011 (a hub bug)",
                stats.connection_crashes,
            ),
            (
                "pairls_paced_messages",
                "Messages that waited for their connection's share of the event loop",
                stats.paced_messages,
            ),
            (
                "pairls_refused_connections",
                "Connections refused at the handshake: their address had --max-connections-per-address",
                stats.refused_connections,
            ),
            (
                "pairls_slow_consumers",
                "Clients closed with 4408 because they did not read what the hub sent",
                stats.slow_consumers,
            ),
            (
                "pairls_keepalive_pings",
                "Keepalive pings sent to connections quiet for a while",
                stats.keepalive_pings,
            ),
            (
                "pairls_keepalive_timeouts",
                "Connections closed with 1011 for not answering a keepalive ping in time",
                stats.keepalive_timeouts,
            ),
            (
                "pairls_throttled_frames",
                "Frames read late to hold a connection or its address to its bytes per second",
                stats.throttled_frames,
            ),
            (
                "pairls_throttled_seconds",
                "Seconds frames waited to be read, for the bytes per second",
                stats.throttled_seconds,
            ),
            (
                "pairls_history_evictions",
                "Op history entries evicted to stay within --max-history-bytes",
                stats.history_evictions,
            ),
            (
                "pairls_owner_closes",
                "Connections closed because the room's owner, the operator or the idle sweep ended them",
                stats.owner_closes,
            ),
            ("pairls_idle_rooms_deleted", "Rooms this hub deleted for being idle", stats.idle_rooms_deleted),
            (
                "pairls_room_check_failures",
                "Checks of rooms against the database that failed (tried again at the next check)",
                stats.room_check_failures,
            ),
            ("pairls_sweep_failures", "Idle room sweeps that failed", stats.sweep_failures),
            (
                "pairls_missed_notifications",
                "Open documents found behind their stored head with no notification of it (caught up)",
                stats.missed_notifications,
            ),
            ("pairls_history_index_builds", "History indexes built from the op log", stats.index_builds),
            (
                "pairls_history_index_build_seconds",
                "Seconds spent building history indexes (the document went on meanwhile)",
                stats.index_build_seconds,
            ),
            (
                "pairls_failed_index_builds",
                "History index builds given up because the op log could not be read",
                stats.failed_index_builds,
            ),
            (
                "pairls_history_index_evictions",
                "History indexes dropped to stay within --max-index-bytes (built again when asked for)",
                stats.index_evictions,
            ),
            (
                "pairls_remade_undos",
                "Undos and redos made again from the new head after another hub committed first",
                stats.remade_toggles,
            ),
            (
                "pairls_repeated_undos",
                "Undos and redos asked again with a key already committed (answered, not done twice)",
                stats.repeated_toggles,
            ),
            (
                "pairls_history_mismatches",
                "Committed ops a history index refused; the index was dropped (a hub bug)",
                stats.history_mismatches,
            ),
            (
                "pairls_peer_notifications",
                "Notifications of room events read from the other hubs on the database",
                peers.stats.received,
            ),
            (
                "pairls_malformed_notifications",
                "Notifications of the other hubs dropped because they did not parse or check",
                stats.malformed_notifications + store.malformed_notifications,
            ),
            (
                "pairls_peer_failures",
                "Writes for the other hubs (participants, presence, heartbeat) that failed; repaired at "
                "the next heartbeat",
                stats.peer_failures,
            ),
            (
                "pairls_presence_coalesced",
                "Cursor moves replaced by a newer one before they were sent to the other hubs",
                hub.peers.outbox.coalesced,
            ),
            (
                "pairls_presence_unshared",
                "Cursor moves not sent to the other hubs: nobody in their room was on another hub",
                hub.peers.presence_unshared,
            ),
            (
                "pairls_presence_clipped",
                "Cursor messages clipped to fit a notification to the other hubs",
                peers.stats.clipped_presence,
            ),
            (
                "pairls_expired_participants",
                "Participants of other hubs dropped because their hub stopped beating",
                peers.stats.expired,
            ),
            (
                "pairls_repaired_participants",
                "Participants of other hubs found in the table and not announced (a lost notification)",
                peers.stats.repaired_joins,
            ),
        ]
        for name, doc, value in counters:
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily(
            "pairls_slowest_message_seconds",
            "Longest one message's handling held the event loop at one go, since the hub started",
            value=stats.slowest_message_seconds,
        )
        yield GaugeMetricFamily(
            "pairls_max_loop_lag_seconds",
            "Most the event loop was late to wake a timer, since the hub started",
            value=stats.max_loop_lag_seconds,
        )
        refusals = CounterMetricFamily(
            "pairls_refusals", "Error messages sent to clients, by error code", labels=["code"]
        )
        for code, n in stats.refusals.items():
            refusals.add_metric([code.value], n)
        yield refusals
