"""What a scenario module declares: its name, number and targets, how to run it, its Method."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .env import Env
from .report import Results


@dataclass(frozen=True)
class Scenario:
    """One scenario of the bench. ``key`` is what ``--only`` takes (the module's name works too);
    ``number`` prefixes its rows in the report; ``targets`` are what ``--list`` shows (the rows'
    verdicts are decided where they are measured); ``method`` gives its paragraph of the report's
    Method, from the run's arguments."""

    key: str
    number: int
    title: str
    targets: tuple[str, ...]
    run: Callable[[Results, Env, argparse.Namespace], Awaitable[None]]
    method: Callable[[argparse.Namespace], list[str]] | None = None
    #: False for the scenarios that need no PostgreSQL (the core replay)
    database: bool = True
