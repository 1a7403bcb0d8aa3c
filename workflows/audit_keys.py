"""The keys that sign the audit log: the current one and those retired.

The key never enters the database: only its id does, so a verifier knows
which key signed an event or a checkpoint after a rotation. The id is an HMAC
of a fixed label under the key, which names the key without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings

LEGACY = ""  # the key id of events written before the log was keyed
_ID_LABEL = b"agentos audit key id"


@dataclass(frozen=True)
class AuditKeys:
    """The current key's id and every key a verifier accepts, by id."""

    current: str
    by_id: dict[str, bytes]
    # One keyed HMAC per key, copied for each message: an append then costs
    # about twice a plain SHA-256 (~8 us), not a fresh key schedule.
    _keyed: dict[str, hmac.HMAC] = field(default_factory=dict, repr=False)

    def sign(self, body: bytes, key_id: str | None = None) -> str:
        """Return the HMAC-SHA256 of `body` under a key (the current one by default)."""
        name = key_id or self.current
        keyed = self._keyed.get(name)
        if keyed is None:
            keyed = self._keyed[name] = hmac.new(self.by_id[name], digestmod="sha256")
        mac = keyed.copy()
        mac.update(body)
        return mac.hexdigest()


def key_id(key: bytes) -> str:
    """Return the public id of a key: 16 hex digits."""
    return hmac.new(key, _ID_LABEL, hashlib.sha256).hexdigest()[:16]


@lru_cache(maxsize=4)
def _keys(current: str, old: tuple[str, ...]) -> AuditKeys:
    by_id = {key_id(k.encode()): k.encode() for k in old}
    current_key = current.encode()
    by_id[key_id(current_key)] = current_key
    return AuditKeys(current=key_id(current_key), by_id=by_id)


def audit_keys() -> AuditKeys:
    """Return the configured keys (read from settings, so tests may override them)."""
    return _keys(settings.AGENTOS_AUDIT_KEY, tuple(settings.AGENTOS_AUDIT_OLD_KEYS))
