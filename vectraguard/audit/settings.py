"""The audit trail's settings: `audit.*` in the system policy (policy.yaml).

    audit:
      key_file: ~/.config/vectraguard/audit.key   # keyed mode (HMAC-SHA256 per event)
      forward: syslog                             # a copy of each record to syslog
      syslog_socket: /dev/log                     # the Unix datagram socket it goes to

They live in the system policy because they protect the record from the
people and programs it records: a user or project file could switch them
off. `~` in key_file is the home of the user who runs Vectra Guard, so one
policy line gives every user a key of their own.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vectraguard import paths
from vectraguard.config import policy as system_policy
from vectraguard.errors import ConfigError
from vectraguard.records import record

DEFAULT_SYSLOG_SOCKET = Path("/dev/log")
MIN_KEY_BYTES = 32  # HMAC-SHA256's block of security: a shorter key is a guessable key
KEY_HINT = "create it with: (umask 077; head -c 32 /dev/urandom > FILE)"


@record
class AuditSettings:
    """`key_file`: None = keyed mode off; `forward`: None or "syslog"."""

    key_file: Path | None = None
    forward: str | None = None
    syslog_socket: Path = DEFAULT_SYSLOG_SOCKET


def load() -> AuditSettings:
    """From the system policy; defaults (nothing keyed, nothing forwarded) without one.
    ConfigError when the policy is invalid (layers.load_file)."""
    loaded = system_policy.load()
    if loaded is None:
        return AuditSettings()
    key_file, forward, socket = (loaded.get(f"audit.{key}") for key in ("key_file", "forward", "syslog_socket"))
    return AuditSettings(key_file=Path(os.path.expanduser(key_file)) if key_file else None, forward=forward,
                         syslog_socket=Path(socket) if socket else DEFAULT_SYSLOG_SOCKET)


def read_key(path: Path) -> bytes:
    """The HMAC key: the file's bytes, at least MIN_KEY_BYTES of them. It must be a
    regular file of the running user, readable by no one else, and outside
    Vectra Guard's data directory (whoever can rewrite the store must not find
    the key beside it). ConfigError (exit 125) otherwise: a configured key that
    cannot be used stops recording, and so every run (fail closed)."""
    where = f"vectraguard: audit.key_file {path}"
    if not path.is_absolute():
        raise ConfigError(f"{where}: must be an absolute path (or start with ~/)")
    data_dir = paths.data_dir().resolve()
    resolved = path.resolve()
    if resolved == data_dir or data_dir in resolved.parents:
        raise ConfigError(f"{where}: lies in the audit store's directory {data_dir}; keep the key elsewhere")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror})", hint=KEY_HINT) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise ConfigError(f"{where}: must be a regular file of yours that no one else can read or write "
                              f"(mode {stat.filemode(info.st_mode)}, owner uid {info.st_uid})",
                              hint="chown it to yourself and chmod 600 it")
        key = os.read(fd, 4096)
    finally:
        os.close(fd)
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{where}: holds {len(key)} bytes; a key needs at least {MIN_KEY_BYTES}", hint=KEY_HINT)
    return key
