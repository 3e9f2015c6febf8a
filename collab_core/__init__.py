"""The core every pairls part shares, with no dependencies and no I/O.

* :mod:`collab_core.ops`: operations over code points (apply, transform,
  compose, invert, diff, split);
* :mod:`collab_core.client`: the client's half of server-ordered OT (one op in
  flight, the rest buffered);
* :mod:`collab_core.view`: a view that shows remote ops later than the client
  learns them;
* :mod:`collab_core.history`: a document's attribution index (who inserted and
  deleted every character; changes, blame, history, per-person undo and redo);
* :mod:`collab_core.wire`: the wire protocol's schema (``docs/protocol.md``);
* :mod:`collab_core.errors`: the exception tree, error codes and close codes;
* :mod:`collab_core.jsonio`: JSON read exactly as ``json`` reads it, and written
  compactly, through orjson when it is installed.

The hub (``collab_server``), the language server (``lsp_bridge``), the tests
and the benchmarks all use it; it needs nothing outside the standard library
(``jsonio`` uses orjson if it is there, and ``json`` if not).
"""
