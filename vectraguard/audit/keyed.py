"""Keyed mode: an HMAC-SHA256 (RFC 2104) of each event's chain hash, under a per-user key.

The plain chain is unchanged (stores without a key verify as before); the
MACs live beside it, in `event_macs(seq, mac)`, and `meta.mac_head` holds
`SEQ:HASH:MAC` of the newest keyed event. Whoever rewrites the store
without the key can re-hash the chain but not make these: an edited,
re-hashed, inserted or forged event (a forged `pruned` event too) fails,
and so does cutting off the end, since mac_head then names an event that is
gone — unless the whole file is rolled back to an older copy, which only a
head kept elsewhere (`logs verify --head`) shows.

MAC input: "vectraguard-audit-v1 event\\n{seq}\\n{hash}" for an event,
"vectraguard-audit-v1 head\\n{seq}\\n{hash}" for mac_head (distinct, so one
cannot stand in for the other). Lowercase hex.
"""

from __future__ import annotations

MAC_HEAD = "mac_head"  # the meta key

# hmac and hashlib are imported by the functions: they load OpenSSL (~2.5 ms,
# digests.py), which a store without a key (the default) never needs.


def _mac(key: bytes, message: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def event_mac(key: bytes, seq: int, digest: str) -> str:
    return _mac(key, f"vectraguard-audit-v1 event\n{seq}\n{digest}")


def head_mac(key: bytes, seq: int, digest: str) -> str:
    return _mac(key, f"vectraguard-audit-v1 head\n{seq}\n{digest}")


def same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())
