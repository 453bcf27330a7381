"""The terminal filter (vectraguard/terminal/sequences.py) as the pure function it is.

Every case is checked fed whole, fed a byte at a time, and split in two at every
boundary: a sequence split across reads must come out exactly as one that was not.
"""

from __future__ import annotations

import random
import re

import pytest

from vectraguard.terminal.escape import printable, printable_output
from vectraguard.terminal.sequences import (
    LIVE,
    MAX_CSI,
    TERMINAL_OWNER,
    Policy,
    SequenceFilter,
)


def _whole(policy: Policy, data: bytes) -> bytes:
    sequence_filter = SequenceFilter(policy)
    return sequence_filter.feed(data) + sequence_filter.end()


def filtered(policy: Policy, data: bytes) -> bytes:
    """What the filter writes for `data`, after checking every way of splitting it gives the same."""
    whole = _whole(policy, data)
    bytewise = SequenceFilter(policy)
    assert b"".join(bytewise.feed(data[i:i + 1]) for i in range(len(data))) + bytewise.end() == whole
    for cut in range(1, len(data)):
        halves = SequenceFilter(policy)
        assert halves.feed(data[:cut]) + halves.feed(data[cut:]) + halves.end() == whole, cut
    return whole


OSC_52 = b"\x1b]52;c;cm0gLXJmIH4K\x07"
FORGED = b"\x1b[1A\x1b[2K\rvectraguard: ok, nothing changed\n"  # climbs into the line above and rewrites it

LIVE_CASES = [
    # What a progress bar and coloured output need passes, as it was.
    (b"plain text\n", b"plain text\n"),
    (b"\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[m", b"\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[m"),
    (b"\r 10%\r 20%\x1b[K\r\x1b[2Kdone\n", b"\r 10%\r 20%\x1b[K\r\x1b[2Kdone\n"),
    (b"a\tb\bc", b"a\tb\bc"),
    ("caf\u00e9 \u65e5\u672c \U0001f600\n".encode(), "caf\u00e9 \u65e5\u672c \U0001f600\n".encode()),
    # Clipboard, titles, hyperlinks, other strings: gone whole, whatever ends them.
    (b"before" + OSC_52 + b"after", b"beforeafter"),
    (b"\x1b]52;c;Zm9v\x1b\\x", b"x"),
    (b"\x1b]0;evil title\x07\x1b]2;t\x1b\\\x1b]1;i\x07ok", b"ok"),
    (b"\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\", b"click"),
    (b"\x1bPq#0;2;0;0;0~-\x1b\\\x1bXsos\x1b\\\x1b^pm\x1b\\\x1b_apc\x1b\\z", b"z"),
    # Cursor movement, erase in display, scrolling, modes, reports, charsets: gone.
    (FORGED, b"\x1b[2K\rvectraguard: ok, nothing changed\n"),  # stays on its own line
    (b"\x1b[2J\x1b[H\x1b[5;1H\x1b[?1049h\x1b[r\x1b[6n\x1b[3K\x1b[1;2K|", b"|"),
    (b"\x1b7\x1b8\x1b(0\x1b)0\x1bc\x1bM\x0e\x0f|", b"|"),
    # SGR with anything but digits and separators is no SGR.
    (b"\x1b[?1m\x1b[1 m\x1b[>4;2m|", b"|"),
    # C1 controls, raw (8-bit terminals) and UTF-8 encoded (U+009B, U+009D): same as their 7-bit forms.
    (b"\x9b1A\x9d52;c;Zm9v\x07\x9b31mred", b"\x1b[31mred"),
    (b"\xc2\x9b2J\xc2\x9d0;title\x07\xc2\x9b0mok", b"\x1b[0mok"),
    (b"\xc2\x85\x84\x8d|", b"|"),  # NEL, IND, RI
    # Letters whose UTF-8 holds bytes 0x80-0x9F are text, not C1: U+00DC is C3 9C, U+015B is C5 9B.
    ("\u00dc\u015b".encode(), "\u00dc\u015b".encode()),
    # Invalid UTF-8 is U+FFFD, a byte at a time as a terminal shows it: a lone A0; E0 80 (the start of an
    # overlong form), whose 80 is then a C1 control; ED A0 (the start of a surrogate), then A0 and 80 alone.
    (b"\xa0\xe0\x80\xed\xa0\x80|", b"\xef\xbf\xbd" * 4 + b"|"),
    # Other C0 controls and DEL: gone.
    (b"\x00\x07\x0b\x0c\x7f|", b"|"),
    # CAN and SUB cancel a sequence; a C0 control inside one still acts (terminals do so).
    (b"\x1b]52;c;x\x18after", b"after"),
    (b"\x1b[1\n;31m", b"\n\x1b[1;31m"),
    # An ESC that is not ST ends a string and starts its own sequence.
    (b"\x1b]52;c;x\x1b[31mred", b"\x1b[31mred"),
    # An over-long sequence is consumed and dropped, not passed in pieces.
    (b"\x1b[" + b"1;" * MAX_CSI + b"m|", b"|"),
    (b"\x1b[" + b"0" * MAX_CSI + b"m|", b"\x1b[" + b"0" * MAX_CSI + b"m|"),
    (b"\x1b[" + b"0" * (MAX_CSI + 1) + b"m|", b"|"),
]


@pytest.mark.parametrize(("data", "expected"), LIVE_CASES)
def test_live_policy(data: bytes, expected: bytes) -> None:
    assert filtered(LIVE, data) == expected


def test_an_unfinished_sequence_is_never_written() -> None:
    for partial in (b"ok\x1b", b"ok\x1b[1;3", b"ok\x1b]52;c;Zm9v", b"ok\x1b]0;t\x1b", b"ok\xe2\x82", b"ok\xc2"):
        assert filtered(LIVE, partial) == b"ok"
        assert filtered(TERMINAL_OWNER, partial) == b"ok"


OWNER_CASES = [
    # A full-screen program's cursor movement, modes and charsets pass.
    (b"\x1b[?1049h\x1b[2J\x1b[H\x1b[5;10Hx\x1b7\x1b8\x1b(0q\x1b(B\x0e\x0f\x07\x1b[?1049l",
     b"\x1b[?1049h\x1b[2J\x1b[H\x1b[5;10Hx\x1b7\x1b8\x1b(0q\x1b(B\x0e\x0f\x07\x1b[?1049l"),
    (b"\x1b]8;;http://example.com/\x1b\\link\x1b]8;;\x07", b"\x1b]8;;http://example.com/\x1b\\link\x1b]8;;\x07"),
    (b"\x1b]4;1;rgb:ff/00/00\x07", b"\x1b]4;1;rgb:ff/00/00\x07"),
    (b"\x1bPq#0~\x1b\\", b"\x1bPq#0~\x1b\\"),
    # The clipboard and titles, whatever the number's spelling or the introducer.
    (b"a" + OSC_52 + b"b\x1b]052;c;x\x1b\\\x9d52;p;x\x07\xc2\x9d52;c;x\x07c", b"abc"),
    (b"\x1b]0;t\x07\x1b]1;t\x07\x1b]2;t\x1b\\\x1b]lt\x1b\\\x1b]Lt\x1b\\x", b"x"),
    (b"\x1b]5522;type=write\x07\x1b]1337;Copy=:Zm9v\x07x", b"x"),
    # Nor can it have the terminal type the host's title back to it.
    (b"\x1b[21t\x1b[20t\x1b[021;1t\x1b[22;0t\x1b[8;24;80tx", b"\x1b[22;0t\x1b[8;24;80tx"),
    # A string carrying controls (tmux's and screen's passthrough to the outer terminal) is dropped.
    (b"\x1bPtmux;\x1b\x1b]52;c;Zm9v\x07\x1b\\x", b"\x1b\\x"),
    (b"\x1bP\x9d52;c;Zm9v\x07\x1b\\x", b"x"),
    (b"\x1b]8;;http://x/\xc2\x9c\xc2\x9d52;c;Zm9v\x07x", b"x"),
    # C1 introducers come out in 7-bit form; other C1 controls are dropped.
    (b"\x9b2J\xc2\x9bH\x85x", b"\x1b[2J\x1b[Hx"),
]


@pytest.mark.parametrize(("data", "expected"), OWNER_CASES)
def test_terminal_owner_policy(data: bytes, expected: bytes) -> None:
    assert filtered(TERMINAL_OWNER, data) == expected


def test_long_text_passes_in_bulk_unchanged() -> None:
    text = ("line of text \u00e9\u00e8 \u4e2d\u6587 \U0001f680\t\r\n" * 20000).encode()
    assert SequenceFilter(LIVE).feed(text) == text


def test_printable_escapes_what_can_act_on_a_terminal_or_reader() -> None:
    assert printable("\r\x1b[K all good") == "\\r\\x1b[K all good"
    assert printable("a\u202eb\u200bc\u2066d\x9b\x7f") == "a\\u202eb\\u200bc\\u2066d\\x9b\\x7f"
    assert printable("caf\udce9") == "caf\\xe9"


def test_printable_output_keeps_lines_and_tabs() -> None:
    assert printable_output(b"ok\n\tnext\r\x1b[K all good\xff\n") == "ok\n\tnext\\r\\x1b[K all good\\xff\n"
    # A pseudo-terminal's CRLF is a line break (nothing is written between the two to overwrite).
    assert printable_output(b"a\r\nb\r\r\nc\r") == "a\r\nb\\r\r\nc\\r"


# What LIVE may write, read back: UTF-8 text of U+00A0 and up or printable ASCII, its four
# controls, SGR and erase in line. Nothing else, whatever came in.
_LIVE_OUTPUT = re.compile(rb"(?:[\t\n\r\b\x20-\x7e]|\x1b\[[0-9;:]*m|\x1b\[[012]?K"
                          rb"|[\xc2][\xa0-\xbf]|[\xc3-\xf4][\x80-\xbf]+)*")
# Bytes an attacker would mix: introducers, terminators, parameters, C1 raw and UTF-8 encoded.
_ALPHABET = [b"\x1b", b"[", b"]", b"P", b"\\", b"\x07", b"5", b"2", b";", b"0", b"m", b"K", b"H", b"c",
             b"\x9b", b"\x9d", b"\x9c", b"\xc2", b"\xc3", b"\x18", b"\n", b"\r", b"x", b"?", b"(", b"\xe2\x80\xae"]


@pytest.mark.parametrize("seed", range(4))
def test_random_input_gives_only_what_the_policy_allows(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        data = b"".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(1, 40)))
        cut = rng.randrange(len(data) + 1)
        for policy in (LIVE, TERMINAL_OWNER):
            whole = _whole(policy, data)
            halves = SequenceFilter(policy)
            assert halves.feed(data[:cut]) + halves.feed(data[cut:]) + halves.end() == whole, data
            assert _whole(policy, whole) == whole, data  # what it writes, it would write again unchanged
            if policy is LIVE:
                assert _LIVE_OUTPUT.fullmatch(whole), (data, whole)
            else:
                assert not re.search(rb"\x1b\](0*(0|1|2|52)\b|[lLI])", whole), (data, whole)
