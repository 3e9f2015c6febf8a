"""``textDocument/completion``: words of every room document, keywords, jedi.

The engine (``lsp_bridge/completion.py``) sees paths, texts and offsets;
this module maps LSP positions to offsets and candidates to
``CompletionItem``s, and asks jedi's worker process (``completion_service.py``),
waiting for it a few milliseconds at most.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from ..completion import Candidate, SemanticResult
from ..positions import encoded_length, line_offset, positions_of
from ..server import PairlsServer

#: items in one answer at most (clangd's default): when more match, the answer is
#: ``isIncomplete`` and the editor asks again as the user types on
LIMIT = 100


async def completion(ls: PairlsServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    """What the ``completions`` setting asks for: ``all`` (room words, keywords, jedi),
    ``room`` (the room's words only: another language server serves the language), ``off``."""
    svc = ls.completions
    uri = params.text_document.uri
    tdoc0 = ls.text_document(uri)
    mode = ls.completion_mode(tdoc0.language_id if tdoc0 is not None else None)
    if mode == "off":
        return lsp.CompletionList(is_incomplete=False, items=[])
    session = ls.session
    doc = session.room.by_uri.get(uri) if session else None
    tdoc = ls.text_document(uri)
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
    line, character = params.position.line, params.position.character
    at = line_offset(text, line, character, ls.encoding)
    offset = len(text) if at is None else at[0]
    if mode == "room":
        semantic = SemanticResult([], "off")
    else:
        semantic = await svc.jedi.semantic(path, text, offset, language_id)
    result = svc.engine.complete(
        path, text, offset, language_id, limit=LIMIT, semantic=semantic, keywords=mode == "all"
    )
    if at is not None and at[1] <= result.start:  # the word is on the cursor's line: no line to count
        start = (line, encoded_length(text[at[1] : result.start], ls.encoding))
    else:
        start = positions_of(text, [result.start], ls.encoding)[0]
    replace = lsp.Range(
        start=lsp.Position(line=start[0], character=start[1]),
        end=lsp.Position(line=line, character=character),
    )
    return lsp.CompletionList(
        is_incomplete=result.incomplete, items=[_item(c, replace) for c in result.items]
    )


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
        text_edit=lsp.TextEdit(range=replace, new_text=c.label),
    )
