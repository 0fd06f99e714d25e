"""Runs the Python runtime's compatibility check (switchboard._compat) on pairs of handshakes.

Usage: compat_check.py PAIRS.json, a JSON list of [client Hello, server Hello]. Prints one JSON
list with, per pair, {"lacking": [[section, name], ...]} (sorted) or {"refused": message}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import switchboard as sb
from switchboard import _compat

with open(sys.argv[1], encoding="utf-8") as file:
    pairs = json.load(file)
results: list[Any] = []
for client, server in pairs:
    try:
        lacking = _compat.check(client, server)
    except sb.IncompatibleInterfaceError as error:
        results.append({"refused": str(error)})
    else:
        results.append({"lacking": sorted([section, name] for section, name in lacking)})
print(json.dumps(results))
