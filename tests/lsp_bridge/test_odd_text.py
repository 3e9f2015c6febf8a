"""Text the hub refuses (NUL, half of a UTF-16 pair) in an editor's buffer, through real
``pairls-lsp`` processes and a real hub: it is shared as U+FFFD, every editor ends with the
same text, and sharing goes on."""

from __future__ import annotations

import pytest

from tests.lsp_bridge.conftest import MakeEditor
from tests.support.lsp_editor import settle

REPLACED = "\ufffd"


@pytest.mark.parametrize("kind", ["vscode", "neovim"])
async def test_nul_and_half_pairs_go_as_replacement_characters_everywhere(
    make_editor: MakeEditor, kind: str
) -> None:
    a = await make_editor(kind, "Ada")
    b = await make_editor("vscode", "Bob")
    ua, ub = a.uri("odd.py"), b.uri("odd.py")
    # a buffer that holds them when shared (a file read as WTF-8, say)
    a.open(ua, "s = '\x00'\nt = '\ud800'\n")
    room = await a.command("pairls.createRoom", {})
    await b.command("pairls.joinRoom", {"invite": room["invite"]})
    b.open(ub, "")
    shared = f"s = '{REPLACED}'\nt = '{REPLACED}'\n"
    await settle([(a, ua), (b, ub)], "odd.py")
    assert a.text(ua) == b.text(ub) == shared
    # typed: each goes as U+FFFD, and the typist's buffer shows it too
    a.append(ua, "u = '\udc00\x00'\n")
    await settle([(a, ua), (b, ub)], "odd.py")
    shared += f"u = '{REPLACED}{REPLACED}'\n"
    assert a.text(ua) == b.text(ub) == shared
    # and the document goes on being shared, both ways
    b.append(ub, "v = 1\n")
    await settle([(a, ua), (b, ub)], "odd.py")
    a.append(ua, "w = 2\n")
    await settle([(a, ua), (b, ub)], "odd.py")
    assert a.text(ua) == b.text(ub) == shared + "v = 1\nw = 2\n"
    said = [m.message for m in a.client.messages if "cannot be shared" in m.message]
    assert len(said) == 1 and "odd.py" in said[0]
    assert not [m for m in b.client.messages if "cannot be shared" in m.message]
