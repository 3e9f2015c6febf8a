"""JSON texts where orjson and the standard ``json`` module part ways, or nearly (the codecs'
tests hold the two side by side on them)."""

from __future__ import annotations

ODD_VALUES = [
    "18446744073709551615",  # the largest integer orjson keeps an integer
    "-9223372036854775808",  # the least
    "-9223372036854775809",  # orjson: a float; json: an integer
    "18446744073709551616",  # orjson: a float; json: an integer
    "1" * 25,
    "1e999",
    "-0",
    "-0.0",
    "1.5",
    "NaN",
    "Infinity",
    '"\\ud800"',
    '"\\udc00\\ud800"',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    '"a\\u2028b"',
    '"é😀"',
    "[" * 1100 + "]" * 1100,
    "true",
    "null",
    '{"a":1,"a":2}',
]
