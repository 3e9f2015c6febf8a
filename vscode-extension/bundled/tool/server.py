"""Run the pairls language server bundled with the VS Code extension (LSP over stdio).

``<python> bundled/tool/server.py [pairls-lsp options]`` with any Python 3.11+: the
language server and its dependencies come from ``bundled/libs`` (scripts/bundle.py), put
first on ``sys.path``, so whatever the interpreter has installed, the bundled copy runs.
The interpreter's own site-packages stay on the path after it: jedi completes the
packages installed there. (The extension does not set PYTHONPATH instead: jedi's
subprocesses would inherit it and see the bundle as installed packages.)
"""

import os
import sys

# Written for any Python (no f-strings), so that an old one says what is wrong.
if sys.version_info < (3, 11):  # noqa: UP036
    sys.stderr.write(
        "pairls: the language server needs Python 3.11 or newer; %s is Python %s\n"  # noqa: UP031
        % (sys.executable, sys.version.split()[0])
    )
    sys.exit(3)

LIBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "libs")
if not os.path.isdir(os.path.join(LIBS, "lsp_bridge")):
    sys.stderr.write("pairls: no language server in %s (build it: python3 scripts/bundle.py)\n" % LIBS)  # noqa: UP031
    sys.exit(3)
sys.path.insert(0, LIBS)

from lsp_bridge.cli import main  # noqa: E402

sys.exit(main())
