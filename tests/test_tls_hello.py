"""Reading the SNI of real and hand-built TLS ClientHellos (vectraguard/network/tls.py)."""

from __future__ import annotations

import random
import ssl

import pytest

from vectraguard.network.tls import MAX_HELLO, HelloResult, client_hello_server_name


def real_hello(server_hostname: str | None, *, tls12: bool = False) -> bytes:
    """The first flight Python's ssl module sends, read from its outgoing BIO."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def record(content: bytes, kind: int = 22) -> bytes:
    return bytes([kind, 3, 1]) + len(content).to_bytes(2, "big") + content


def vec(width: int, content: bytes) -> bytes:
    return len(content).to_bytes(width, "big") + content


def sni_extension(*names: tuple[int, bytes]) -> bytes:
    entries = b"".join(bytes([kind]) + vec(2, name) for kind, name in names)
    return (0).to_bytes(2, "big") + vec(2, vec(2, entries))


def hello_body(extensions: bytes | None) -> bytes:
    body = b"\x03\x03" + bytes(32) + vec(1, b"") + vec(2, b"\x13\x01") + vec(1, b"\x00")
    return body if extensions is None else body + vec(2, extensions)


def handshake(body: bytes) -> bytes:
    return b"\x01" + len(body).to_bytes(3, "big") + body


@pytest.mark.parametrize("tls12", [False, True])
def test_real_hello_with_server_name(tls12: bool) -> None:
    data = real_hello("Example.COM", tls12=tls12)
    assert client_hello_server_name(data) == HelloResult("server-name", server_name="example.com")


def test_real_hello_without_server_name() -> None:
    assert client_hello_server_name(real_hello(None)) == HelloResult("no-server-name")


def test_real_hello_with_punycode_idn() -> None:
    name = "bücher.example".encode("idna").decode("ascii")
    assert name == "xn--bcher-kva.example"
    assert client_hello_server_name(real_hello(name)).server_name == name


@pytest.mark.parametrize("server_hostname", ["api.example.org", None])
def test_every_cut_of_a_real_hello_needs_more(server_hostname: str | None) -> None:
    data = real_hello(server_hostname)
    for cut in range(len(data)):
        result = client_hello_server_name(data[:cut])
        assert result.kind == "need-more", (cut, result)
        assert cut < result.need <= len(data), (cut, result)
    assert client_hello_server_name(data).kind in ("server-name", "no-server-name")


def test_real_hello_fed_in_the_needed_steps_completes() -> None:
    data = real_hello("step.example")
    have, steps = 0, 0
    while True:
        result = client_hello_server_name(data[:have])
        if result.kind != "need-more":
            break
        have, steps = result.need, steps + 1
    assert result.server_name == "step.example" and steps >= 2


def test_trailing_dot_is_stripped() -> None:
    data = record(handshake(hello_body(sni_extension((0, b"Host.Example.")))))
    assert client_hello_server_name(data) == HelloResult("server-name", server_name="host.example")


def test_a_hello_split_over_two_records_and_many_reads() -> None:
    message = handshake(hello_body(sni_extension((0, b"split.example"))))
    data = record(message[:7]) + record(message[7:])
    for cut in range(len(data)):
        assert client_hello_server_name(data[:cut]).kind == "need-more", cut
    assert client_hello_server_name(data).server_name == "split.example"


def test_a_hello_split_into_one_byte_records() -> None:
    message = handshake(hello_body(sni_extension((0, b"tiny.example"))))
    data = b"".join(record(message[i:i + 1]) for i in range(len(message)))
    assert client_hello_server_name(data).server_name == "tiny.example"


def test_extensions_may_be_absent_before_tls13() -> None:
    assert client_hello_server_name(record(handshake(hello_body(None)))).kind == "no-server-name"


def test_other_name_types_are_skipped() -> None:
    data = record(handshake(hello_body(sni_extension((7, b"opaque")))))
    assert client_hello_server_name(data).kind == "no-server-name"


@pytest.mark.parametrize("first", [b"G", b"\x80", b"\x17", b"\x00"])
def test_not_tls(first: bytes) -> None:
    result = client_hello_server_name(first + b"ET / HTTP/1.1\r\n")
    assert result.kind == "not-tls"


def test_empty_input_needs_a_record_header() -> None:
    assert client_hello_server_name(b"") == HelloResult("need-more", need=9)


@pytest.mark.parametrize(("data", "reason"), [
    (record(b"\x02\x00\x00\x00"), "not a ClientHello"),
    (bytes([22, 2, 0, 0, 4]) + b"\x01\x00\x00\x00", "not TLS"),
    (record(b""), "handshake record of 0 bytes"),
    (record(b"\x01\x00\x00\x10") + record(b"x", kind=23), "record of type 23"),
    (record(b"\x01\x01\x00\x00"), "larger than 64 KiB"),
    (record(handshake(hello_body(sni_extension((0, b"a.example"), (0, b"b.example"))))), "two host names"),
    (record(handshake(hello_body(sni_extension((0, b""))))), "empty or not an ASCII"),
    (record(handshake(hello_body(sni_extension((0, "bücher.de".encode()))))), "empty or not an ASCII"),
    (record(handshake(hello_body(sni_extension((0, b"a..b"))))), "not a host name"),
    (record(handshake(hello_body(sni_extension((0, b"a b"))))), "empty or not an ASCII"),
    (record(handshake(hello_body(sni_extension((0, b"x.example")) + sni_extension((0, b"y.example"))))),
     "appears twice"),
    (record(handshake(hello_body(b"\x00\x00\x00\x09abc"))), "cut short"),
    (record(handshake(b"\x03\x03" + bytes(10))), "cut short"),
    (record(handshake(hello_body(b"") + b"junk")), "bytes after the extensions"),
])
def test_malformed(data: bytes, reason: str) -> None:
    result = client_hello_server_name(data)
    assert result.kind == "malformed" and reason in result.reason, result


def test_over_64_kib_is_refused() -> None:
    # Extensions may total 65535 bytes, so a well-formed hello can pass 64 KiB.
    body = hello_body(b"".join((21 + i).to_bytes(2, "big") + vec(2, bytes(16379)) for i in range(4)))
    message = handshake(body)
    data = b"".join(record(message[i:i + 16000]) for i in range(0, len(message), 16000))
    assert len(data) > MAX_HELLO
    assert client_hello_server_name(data).reason == "the ClientHello is larger than 64 KiB"
    assert client_hello_server_name(data[:16005]).kind == "malformed"  # the first record declares the length
    assert client_hello_server_name(bytes([22, 3, 1, 0x40, 0]) + bytes(MAX_HELLO * 2)).kind == "malformed"


def test_random_and_garbled_inputs_never_raise() -> None:
    rng = random.Random(15)
    real = real_hello("fuzz.example")
    kinds = set()
    for _ in range(3000):
        choice = rng.randrange(4)
        if choice == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        elif choice == 1:
            data = b"\x16\x03\x01" + bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        else:
            garbled = bytearray(real)
            for _ in range(rng.randrange(1, 6)):
                garbled[rng.randrange(len(garbled))] = rng.randrange(256)
            data = bytes(garbled[:rng.randrange(len(garbled) + 1)] if choice == 3 else garbled)
        result = client_hello_server_name(data)
        assert result.kind in ("need-more", "not-tls", "server-name", "no-server-name", "malformed")
        kinds.add(result.kind)
    assert {"need-more", "not-tls", "malformed"} <= kinds
