"""``textDocument/completion``: words of every room document, keywords, jedi.

The engine (``lsp_bridge/completion.py``) sees paths, texts and offsets;
this module maps LSP positions to offsets and candidates to
``CompletionItem``s, and runs jedi on its own thread under a time budget.
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types as lsp

from ..completion import Candidate, SemanticResult, language_of
from ..completion_service import CompletionService
from ..positions import LineIndex
from ..server import PairlsServer

logger = logging.getLogger(__name__)

#: how long a completion waits for jedi (it runs on in the background after that)
JEDI_WAIT_S = 0.015


async def completion(ls: PairlsServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    """What the ``completions`` setting asks for: ``all`` (room words, keywords, jedi),
    ``room`` (the room's words only: another language server serves the language), ``off``."""
    svc = ls.completions
    uri = params.text_document.uri
    tdoc0 = ls.workspace.text_documents.get(uri)
    mode = ls.completion_mode(tdoc0.language_id if tdoc0 is not None else None)
    if mode == "off":
        return lsp.CompletionList(is_incomplete=False, items=[])
    session = ls.session
    doc = session.room.by_uri.get(uri) if session else None
    tdoc = ls.workspace.text_documents.get(uri)
    language_id = tdoc.language_id if tdoc is not None else None
    if doc is not None:
        path, text = doc.path, doc.views[uri].sync.text
    elif tdoc is not None:
        # not shared: still complete from it and from the room
        path = ls.paths.room_path(uri) or uri
        text = tdoc.source
        if svc.indexed_versions.get(path) != tdoc.version:
            svc.index.update(path, text, author=ls.display_name)
            svc.indexed_versions[path] = tdoc.version or 0
    else:
        return lsp.CompletionList(is_incomplete=False, items=[])
    idx = LineIndex.of(text)
    offset = idx.offset(params.position.line, params.position.character, ls.encoding)
    if mode == "room":
        semantic = SemanticResult([], "off")
    else:
        semantic = await _semantic(svc, path, text, offset, language_id)
    result = svc.engine.complete(path, text, offset, language_id, semantic=semantic, keywords=mode == "all")
    start = idx.position(result.start, ls.encoding)
    replace = lsp.Range(
        start=lsp.Position(line=start[0], character=start[1]),
        end=lsp.Position(line=params.position.line, character=params.position.character),
    )
    return lsp.CompletionList(
        is_incomplete=result.incomplete, items=[_item(c, replace) for c in result.items]
    )


async def _semantic(
    svc: CompletionService, path: str, text: str, offset: int, language_id: str | None
) -> SemanticResult:
    if language_of(path, language_id) != "python" or not svc.engine.jedi_enabled:
        return SemanticResult([], "off")
    if svc.jedi_busy is not None and not svc.jedi_busy.done():
        return SemanticResult([], "skipped")  # the last one is still running
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(svc.jedi_pool, svc.engine.semantic, path, text, offset, language_id)
    svc.jedi_busy = fut
    try:
        # Wait less than the 20 ms a completion may take; a late answer is
        # cached and serves the next keystroke in the same word.
        return await asyncio.wait_for(asyncio.shield(fut), JEDI_WAIT_S)
    except TimeoutError:
        return SemanticResult([], "skipped")
    except Exception:
        logger.exception("jedi failed")
        return SemanticResult([], "error")


_KINDS = {
    "keyword": lsp.CompletionItemKind.Keyword,
    "identifier": lsp.CompletionItemKind.Text,
    "function": lsp.CompletionItemKind.Function,
    "class": lsp.CompletionItemKind.Class,
    "module": lsp.CompletionItemKind.Module,
    "instance": lsp.CompletionItemKind.Variable,
    "statement": lsp.CompletionItemKind.Variable,
    "param": lsp.CompletionItemKind.Variable,
    "property": lsp.CompletionItemKind.Property,
    "path": lsp.CompletionItemKind.File,
}


def _item(c: Candidate, replace: lsp.Range) -> lsp.CompletionItem:
    kind = _KINDS.get(c.type or c.kind, lsp.CompletionItemKind.Text)
    return lsp.CompletionItem(
        label=c.label,
        kind=kind,
        detail=c.detail,
        sort_text=c.sort_text,
        filter_text=c.label,
        text_edit=lsp.TextEdit(range=replace, new_text=c.label),
    )
