"""The fork server's messages: what a client sends, what the run answers.

A request is one frame: a 4-byte big-endian length, then NUL-separated
fields `TAG:VALUE` in this order (no argument, environment entry or path
can contain a NUL, so the split is exact):

    VGFS1                      the protocol version
    x:EXECUTABLE               sys.executable of the client
    c:ENCODING:ERRORS          its file-system encoding and error handler (sys.getfilesystemencoding())
    p:ENTRY ...                sys.path, in order
    a:WORD ...                 sys.argv, in order (argv[0] included)
    e:NAME=VALUE ...           the environment
    s:FD:ENCODING:ERRORS       how the client's sys.stdin/stdout/stderr decode and encode
    f:NAME,NAME...             what the descriptors passed with the frame
                               (SCM_RIGHTS, in order) are: 0, 1, 2, cwd, tty

Answers are single lines. `R` comes first, from the process forked for the
connection: only then does the client send its request, so that no
descriptor of the client's (its stdout's pipe ...) is ever left in flight
in a connection a stuck server never accepted, keeping it open. `H<pid>`, once every other check has passed,
asks for the proof: one byte carrying (SCM_RIGHTS) the client's open
/proc/PID/mem of that process (peer.may_look_into_us). Then `P<pid>` (the run's process took the request and
is about to start; from here the client forwards its signals to that pid),
`N<reason>` (not taken: the client runs the command itself), `X<status>`
(the run finished with this exit status). End of stream before `P` means
not taken; after it, without `X`, that the run's process died.

Only `os` and `sys` are imported here: the client reads this module before
anything else (forkserver/client.py).
"""

from __future__ import annotations

VERSION = b"VGFS1"
MAX_REQUEST = 16 * 1024 * 1024  # argv + environment can reach ARG_MAX (2 MiB by default); far above it
MAX_FDS = 5
FD_NAMES = ("0", "1", "2", "cwd", "tty")


class BadRequest(ValueError):
    """A frame this version cannot read."""


def encode(executable: bytes, path: list[bytes], argv: list[bytes], environ: list[tuple[bytes, bytes]],
           streams: list[tuple[int, str, str]], fd_names: list[str], fs_encoding: str = "utf-8:surrogateescape") -> bytes:
    """One framed request (see the module docstring)."""
    fields = [VERSION, b"x:" + executable, b"c:" + fs_encoding.encode("ascii")]
    fields += [b"p:" + entry for entry in path]
    fields += [b"a:" + word for word in argv]
    fields += [b"e:" + name + b"=" + value for name, value in environ]
    fields += [f"s:{fd}:{encoding}:{errors}".encode() for fd, encoding, errors in streams]
    fields.append(("f:" + ",".join(fd_names)).encode())
    body = b"\0".join(fields)
    return len(body).to_bytes(4, "big") + body


class Request:
    """A decoded request. Raises BadRequest for anything malformed."""

    def __init__(self, body: bytes) -> None:
        fields = body.split(b"\0")
        if not fields or fields[0] != VERSION:
            raise BadRequest("not a version-1 request")
        self.executable = b""
        self.fs_encoding = ""
        self.path: list[bytes] = []
        self.argv: list[bytes] = []
        self.environ: dict[bytes, bytes] = {}
        self.streams: dict[int, tuple[str, str]] = {}
        self.fd_names: list[str] = []
        for field in fields[1:]:
            tag, sep, value = field.partition(b":")
            if not sep:
                raise BadRequest("a field without a tag")
            if tag == b"x":
                self.executable = value
            elif tag == b"c":
                self.fs_encoding = value.decode("ascii", "strict")
            elif tag == b"p":
                self.path.append(value)
            elif tag == b"a":
                self.argv.append(value)
            elif tag == b"e":
                name, eq, val = value.partition(b"=")
                if not eq or not name:
                    raise BadRequest("an environment entry without a name")
                self.environ[name] = val
            elif tag == b"s":
                parts = value.decode("ascii", "strict").split(":")
                if len(parts) != 3 or parts[0] not in ("0", "1", "2"):
                    raise BadRequest("a stream field that is not FD:ENCODING:ERRORS")
                self.streams[int(parts[0])] = (parts[1], parts[2])
            elif tag == b"f":
                names = value.decode("ascii", "strict").split(",") if value else []
                if len(names) > MAX_FDS or len(set(names)) != len(names) or any(n not in FD_NAMES for n in names):
                    raise BadRequest("an unknown or repeated descriptor name")
                self.fd_names = names
            else:
                raise BadRequest(f"an unknown field {tag!r}")
        if not self.argv or not self.executable:
            raise BadRequest("no argv or no executable")
