"""A streaming filter over the bytes a sandbox writes to the user's terminal.

The bytes are parsed the way a terminal parses them (ECMA-48 and the DEC/xterm
state machine described at https://vt100.net/emu/dec_ansi_parser, with
xterm's OSC-ends-at-BEL and UTF-8 handling): text, C0 controls, escape
sequences `ESC I* F`, control sequences `CSI P* I* F`, and the strings OSC,
DCS, SOS, PM and APC ended by ST (`ESC \\`, or BEL for OSC). A policy says
which of these reach the terminal; everything else is dropped whole.

What comes out is only ever whole, unambiguous units: plain text and kept
controls, a kept sequence re-emitted in 7-bit form, a kept string whose
payload holds no control characters. An unfinished sequence is held until it
ends (it may be split across reads anywhere) and dropped if the stream ends
first, so no terminal can be left inside a sequence of ours, and the filter's
reading and the terminal's cannot disagree. C1 controls count whether they come
as raw bytes 0x80-0x9F (8-bit terminals) or UTF-8 encoded (U+0080-U+009F,
which xterm and others obey in UTF-8 mode). Invalid UTF-8 becomes U+FFFD.

Two policies:

- LIVE (the output of `run`): text, tab, newline, carriage return,
  backspace, SGR (colours and attributes: `CSI [0-9;:]* m`) and erase in
  line (`CSI [012]? K`), which is what progress bars need. Dropped: every
  other control sequence (cursor movement, which could climb over and
  rewrite lines printed before, erase in display, scrolling, modes, reports),
  every other escape sequence (character sets, saving the cursor ...), every
  string (OSC titles, clipboard, hyperlinks; DCS; SOS, PM, APC), every other
  control character and C1 control.
- TERMINAL_OWNER (interactive `sandbox shell`, `agent start`, `logs
  replay`): full-screen programs need cursor movement and modes, so all of
  that passes but the requests to report the title (CSI 20 t, CSI 21 t: the
  answer is typed into the sandbox); dropped are OSC 0, 1 and 2 and dtterm's
  l, L and I (window and icon titles), OSC 52 and kitty's 5522 (clipboard
  writes and reads), iTerm2's 1337 (it can copy to the clipboard and save
  files), any string whose payload is not control-free UTF-8 (tmux and
  screen pass such payloads on to the outer terminal), and C1 controls other
  than the introducers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ESC, BEL, CAN, SUB, DEL = 0x1B, 0x07, 0x18, 0x1A, 0x7F
REPLACEMENT = "\ufffd".encode()
MAX_CSI = 256  # bytes of parameters; a longer sequence is consumed and dropped
MAX_STRING = 1 << 20  # bytes of a string a policy keeps (sixel images); longer: dropped

# The C1 introducers and the 7-bit escape that means the same (ECMA-48 §5.3).
_CSI = 0x9B
_STRINGS = {0x9D: "osc", 0x90: "dcs", 0x98: "sos", 0x9E: "pm", 0x9F: "apc"}
_STRING_AFTER_ESC = {ord("]"): "osc", ord("P"): "dcs", ord("X"): "sos", ord("^"): "pm", ord("_"): "apc"}
_INTRODUCER = {"osc": b"\x1b]", "dcs": b"\x1bP", "sos": b"\x1bX", "pm": b"\x1b^", "apc": b"\x1b_"}

# Text that needs no parsing: printable ASCII and well-formed UTF-8 of U+00A0
# and above (no C1, no surrogates, no overlong forms), plus the policy's controls.
_TEXT = (rb"[\x20-\x7e]|\xc2[\xa0-\xbf]|[\xc3-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]"
         rb"|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}"
         rb"|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}")
# A control sequence whole, as the slow path would take it (parameters within MAX_CSI).
_WHOLE_CSI = re.compile(rb"\x1b\[([\x20-\x3f]{0,%d})([\x40-\x7e])" % MAX_CSI)
# The second byte of a UTF-8 sequence where the lead byte narrows it (RFC 3629 §4).
_SECOND = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}


class Policy:
    """What a filter lets through. `controls`: C0 bytes (and DEL) kept as they are;
    `keep_csi(parameters and intermediates, final byte)`; `keep_escape`: every
    `ESC I* F` sequence; `keep_string(kind, payload)`, kind one of osc, dcs, sos,
    pm, apc (None: no string is ever kept, so none is buffered). `text` matches a
    run of bytes that pass as they are. Not changed once made."""

    def __init__(self, name: str, controls: bytes, keep_csi: Callable[[bytes, int], bool], keep_escape: bool,
                 keep_string: Callable[[str, bytes], bool] | None) -> None:
        self.name = name
        self.controls = controls
        self.keep_csi = keep_csi
        self.keep_escape = keep_escape
        self.keep_string = keep_string
        kept = b"".join(re.escape(bytes([c])) for c in controls)
        self.text: re.Pattern[bytes] = re.compile(rb"(?:[" + kept + rb"]|" + _TEXT + rb")+")


_SGR = re.compile(rb"[0-9;:]*")
_ERASE_IN_LINE = (b"", b"0", b"1", b"2")


def _live_csi(parameters: bytes, final: int) -> bool:
    if final == ord("m"):
        return _SGR.fullmatch(parameters) is not None
    return final == ord("K") and parameters in _ERASE_IN_LINE


def _owner_csi(parameters: bytes, final: int) -> bool:
    # CSI 20 t and CSI 21 t make the terminal type its icon label and window title back, which
    # would hand the sandbox the host's title (often user@host:path). xterm reads 021 as 21.
    first = parameters.split(b";")[0]
    return not (final == ord("t") and first.isdigit() and int(first) in (20, 21))


# OSC commands that set or report titles, or reach the clipboard or files.
_BLOCKED_OSC = frozenset({"0", "1", "2", "l", "L", "I", "52", "5522", "1337"})
_OSC_COMMAND = re.compile(r"[0-9]+|.?", re.DOTALL)


def _owner_string(kind: str, payload: bytes) -> bool:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        return False
    if kind != "osc":
        return True
    command = _OSC_COMMAND.match(text).group()  # type: ignore[union-attr]  # matches "" at worst
    # xterm reads the number as a number: 052 is 52.
    return (str(int(command)) if command.isdigit() else command) not in _BLOCKED_OSC


LIVE = Policy("filtered", controls=b"\t\n\r\b", keep_csi=_live_csi, keep_escape=False, keep_string=None)
TERMINAL_OWNER = Policy("terminal owner", controls=bytes([*range(ESC), *range(ESC + 1, 0x20), DEL]),
                        keep_csi=_owner_csi, keep_escape=True, keep_string=_owner_string)

_GROUND, _UTF8, _ESCAPE, _CSI_STATE, _STRING, _STRING_ESC = range(6)


class SequenceFilter:
    """feed(bytes) -> the bytes to write, for one stream; state carries over
    between calls. end() forgets an unfinished sequence (it is never written)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._state = _GROUND
        self._seq = bytearray()  # intermediates / parameters / string payload so far
        self._kind = ""  # the string's kind, in _STRING and _STRING_ESC
        self._overflow = False
        self._utf8 = bytearray()
        self._need = 0

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        text = self.policy.text
        i, size = 0, len(data)
        while i < size:
            if self._state == _GROUND:
                match = text.match(data, i) or _WHOLE_CSI.match(data, i)
                if match and match.lastindex:  # a whole control sequence in this read: decided at once
                    self._whole_csi(match.group(1), match.group(2)[0], out)
                    i = match.end()
                    continue
                if match:
                    out += match.group()
                    i = match.end()
                    continue
            self._step(data[i], out)
            i += 1
        return bytes(out)

    def _whole_csi(self, parameters: bytes, final: int, out: bytearray) -> None:
        # What _csi decides for the same bytes fed one at a time (test_terminal_sequences checks).
        if self.policy.keep_csi(parameters, final):
            out += b"\x1b[" + parameters + bytes([final])

    def end(self) -> bytes:
        self._state = _GROUND
        self._seq.clear()
        return b""

    def _step(self, byte: int, out: bytearray) -> None:
        state = self._state
        if state == _GROUND:
            self._ground(byte, out)
        elif state == _UTF8:
            self._utf8_byte(byte, out)
        elif state == _STRING:
            self._string(byte, out)
        elif state == _STRING_ESC:
            if byte == ord("\\"):
                self._end_string(b"\x1b\\", out)
            else:  # an ESC that is not ST cancels the string and starts a sequence
                self._begin(_ESCAPE)
                self._step(byte, out)
        elif byte == ESC:
            self._begin(_ESCAPE)
        elif byte in (CAN, SUB) or byte >= 0x80:
            # CAN and SUB cancel a sequence; a byte of 0x80 and up ends it here
            # (C1 controls interrupt anything): either way it is read afresh.
            self._state = _GROUND
            self._ground(byte, out)
        elif byte < 0x20:
            self._control(byte, out)  # terminals act on a C0 control inside a sequence
        elif byte == DEL:
            pass  # ignored inside a sequence
        elif state == _ESCAPE:
            self._escape(byte, out)
        else:
            self._csi(byte, out)

    def _begin(self, state: int, kind: str = "") -> None:
        self._state, self._kind, self._overflow = state, kind, False
        self._seq.clear()

    def _ground(self, byte: int, out: bytearray) -> None:
        if byte == ESC:
            self._begin(_ESCAPE)
        elif byte < 0x20 or byte == DEL:
            self._control(byte, out)
        elif byte < 0x80:
            out.append(byte)
        elif byte < 0xA0:
            self._c1(byte)  # a raw C1 control, as an 8-bit terminal reads it
        elif 0xC2 <= byte <= 0xF4:
            self._state, self._need = _UTF8, 1 if byte < 0xE0 else 2 if byte < 0xF0 else 3
            self._utf8[:] = bytes([byte])
        else:
            out += REPLACEMENT

    def _control(self, byte: int, out: bytearray) -> None:
        if byte in self.policy.controls:
            out.append(byte)

    def _utf8_byte(self, byte: int, out: bytearray) -> None:
        low, high = _SECOND.get(self._utf8[0], (0x80, 0xBF)) if len(self._utf8) == 1 else (0x80, 0xBF)
        if not low <= byte <= high:
            out += REPLACEMENT  # what came so far is no character; this byte starts over
            self._state = _GROUND
            self._ground(byte, out)
            return
        self._utf8.append(byte)
        self._need -= 1
        if self._need:
            return
        self._state = _GROUND
        if self._utf8[0] == 0xC2 and byte < 0xA0:
            self._c1(byte)  # U+0080-U+009F: a C1 control in UTF-8 clothing
        else:
            out += self._utf8

    def _c1(self, code: int) -> None:
        if code == _CSI:
            self._begin(_CSI_STATE)
        elif code in _STRINGS:
            self._begin(_STRING, _STRINGS[code])
        # Other C1 controls (IND, NEL, RI, SS2, SS3, a stray ST ...) are dropped:
        # they move the cursor or switch character sets, and are no text.

    def _escape(self, byte: int, out: bytearray) -> None:
        if 0x20 <= byte <= 0x2F:  # an intermediate byte: the sequence goes on
            self._keep(byte)
        elif not self._seq and byte == ord("["):
            self._begin(_CSI_STATE)
        elif not self._seq and byte in _STRING_AFTER_ESC:
            self._begin(_STRING, _STRING_AFTER_ESC[byte])
        else:  # the final byte
            self._state = _GROUND
            if self.policy.keep_escape and not self._overflow:
                out += b"\x1b" + self._seq + bytes([byte])

    def _csi(self, byte: int, out: bytearray) -> None:
        if byte < 0x40:  # parameter or intermediate
            self._keep(byte)
            return
        self._state = _GROUND
        if not self._overflow and self.policy.keep_csi(bytes(self._seq), byte):
            out += b"\x1b[" + self._seq + bytes([byte])

    def _keep(self, byte: int) -> None:
        if len(self._seq) < MAX_CSI:
            self._seq.append(byte)
        else:
            self._overflow = True

    def _string(self, byte: int, out: bytearray) -> None:
        if byte == ESC:
            self._state = _STRING_ESC
        elif byte in (CAN, SUB):  # cancelled
            self._state = _GROUND
            self._ground(byte, out)
        elif byte == BEL and self._kind == "osc":  # xterm ends an OSC at BEL too
            self._end_string(b"\x07", out)
        elif self.policy.keep_string is not None:
            if len(self._seq) < MAX_STRING:
                self._seq.append(byte)
            else:
                self._overflow = True

    def _end_string(self, terminator: bytes, out: bytearray) -> None:
        self._state = _GROUND
        keep = self.policy.keep_string
        if keep is not None and not self._overflow and keep(self._kind, bytes(self._seq)):
            out += _INTRODUCER[self._kind] + self._seq + terminator
        self._seq.clear()
