"""Short, stable hashes that tie checkpoints and models to the configuration behind them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: Hex digits kept: enough to tell configurations apart, short enough to read in the UI.
FINGERPRINT_LENGTH = 16


def stable_hash(payload: dict[str, Any]) -> str:
    """Hash of a JSON-serialisable mapping, independent of key order."""
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:FINGERPRINT_LENGTH]
