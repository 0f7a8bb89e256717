"""The fast send path: server WebSocket frames built once, written straight to the socket.

A server→client frame is unmasked, so the complete frame of an event (header + UTF-8
payload) is the same bytes for every subscriber. Going through Quart → Hypercorn →
wsproto → h11 costs ~40 µs of Python per frame; writing prepared bytes costs one
`os.write`. The hub therefore builds each event's frame once and writes it to every idle
subscriber's socket at once, with no task switch; only what the kernel will not take now
goes through the connection's write pump.

This module is the wire format only (sans-IO): frames built and cut. What writes them to
and reads them from Hypercorn's sockets is `nochat/transport/`.
"""

from __future__ import annotations

import base64
import codecs
import hashlib

_TEXT = 0x81  # FIN + opcode 1 (text)
_BINARY = 0x82  # FIN + opcode 2 (binary)


def text_frame(payload: str) -> bytes:
    """One complete, unmasked, unfragmented text frame carrying `payload`."""
    return _frame(_TEXT, payload.encode())


def binary_frame(data: bytes) -> bytes:
    """One complete, unmasked, unfragmented binary frame carrying `data`."""
    return _frame(_BINARY, data)


def _frame(first: int, data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        return bytes((first, n)) + data
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + data
    return bytes((first, 127)) + n.to_bytes(8, "big") + data


#: RFC 6455 §1.3: what the server appends to the client's key before hashing it.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handshake_response(key: bytes, subprotocol: str | None) -> bytes:
    """The server's 101 for a valid opening handshake with `key` (Sec-WebSocket-Key),
    no extension, and `subprotocol` when one was chosen (RFC 6455 §4.2.2)."""
    accept = base64.b64encode(hashlib.sha1(key + _ACCEPT_GUID).digest())
    lines = [
        b"HTTP/1.1 101 Switching Protocols",
        b"upgrade: websocket",
        b"connection: Upgrade",
        b"sec-websocket-accept: " + accept,
    ]
    if subprotocol is not None:
        lines.append(b"sec-websocket-protocol: " + subprotocol.encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


# ---- the fast receive path --------------------------------------------------------------------

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
#: RFC 6455 §7.4: close codes a peer may send (1004-1006 and 1015 are never sent).
_SENDABLE_CLOSE = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})


class ProtocolViolation(Exception):
    """The client broke RFC 6455; close the connection with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """An unmasked control frame (payload at most 125 bytes)."""
    return bytes((0x80 | opcode, len(payload))) + payload


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame with `code` (none when None) and `reason`, cut to fit a control frame."""
    if code is None:
        return control_frame(OP_CLOSE)
    return control_frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])


def close_code(payload: bytes) -> int | None:
    """The status code of a client's close frame (None when it has none); RFC 6455 §7.4.

    Raises ProtocolViolation for a malformed payload (1002) or a reason that is not
    UTF-8 (1007).
    """
    if not payload:
        return None
    if len(payload) == 1:
        raise ProtocolViolation(1002, "close payload of one byte")
    code = int.from_bytes(payload[:2], "big")
    if code not in _SENDABLE_CLOSE and not 3000 <= code <= 4999:
        raise ProtocolViolation(1002, "invalid close code")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolViolation(1007, "close reason is not UTF-8") from None
    return code


def unmask(data: bytes, key: bytes) -> bytes:
    """XOR `data` with the 4-byte masking `key` (RFC 6455 §5.3), in C via big ints."""
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class FrameReader:
    """Cuts a client's byte stream into messages and control frames (RFC 6455 §5).

    It replaces wsproto's frame decoder on connections NoChat reads itself: no extension
    (so no RSV bit may be set), client frames masked, control frames whole and at most
    125 bytes, fragments continued in order, a message at most `max_message` bytes
    (checked from the header, before any of it is buffered). The fragments of a text
    message are checked as they come (RFC 6455 §8.1): the fragment that makes the text
    invalid UTF-8 fails the connection with 1007 at once; a valid prefix that ends inside
    a code point is fine until the final fragment. A text frame still arriving is checked
    as far as it has come, so a bad byte fails it before the rest arrives (Autobahn
    6.4.3/6.4.4). (A whole text message in one frame is decoded, and so checked, by its
    receiver.)
    """

    __slots__ = ("_buf", "_max", "_opcode", "_partial", "_parts", "_size", "_utf8")

    def __init__(self, max_message: int) -> None:
        self._buf = b""
        self._max = max_message
        self._opcode = 0
        self._parts: list[bytes] | None = None  # fragments of an unfinished message
        self._size = 0
        self._utf8: codecs.IncrementalDecoder | None = None  # while a text is in fragments
        #: The text frame that is still arriving: payload bytes checked so far, and the
        #: decoder that has seen them (a copy: the complete frame is decoded again).
        self._partial: tuple[int, codecs.IncrementalDecoder] | None = None

    def feed(self, data: bytes) -> tuple[list[tuple[int, bytes]], ProtocolViolation | None]:
        """The (opcode, payload) of every message and control frame `data` completes, in
        order, and the violation that ends the stream (nothing after it is read)."""
        buf = self._buf + data if self._buf else data
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        try:
            while end - pos >= 2:
                b0, b1 = buf[pos], buf[pos + 1]
                opcode, fin = b0 & 0x0F, b0 & 0x80
                length, head = b1 & 0x7F, 6
                if length == 126:
                    if end - pos < 4:
                        break
                    length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 8
                elif length == 127:
                    if end - pos < 10:
                        break
                    length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 14
                self._check(b0, b1, length)
                if end - pos < head + length:
                    if opcode == OP_TEXT or (opcode == OP_CONTINUATION and self._utf8 is not None):
                        self._check_partial(buf[pos + head - 4 : end])
                    break
                self._partial = None
                payload = unmask(
                    buf[pos + head : pos + head + length], buf[pos + head - 4 : pos + head]
                )
                pos += head + length
                if opcode >= OP_CLOSE:
                    out.append((opcode, payload))
                    if opcode == OP_CLOSE:
                        pos = end  # nothing after a close frame counts
                        break
                elif fin and opcode:
                    out.append((opcode, payload))  # a whole message in one frame
                else:
                    if opcode:
                        self._opcode, self._parts, self._size = opcode, [], 0
                        if opcode == OP_TEXT:
                            self._utf8 = _utf8_decoder()
                    assert self._parts is not None
                    if self._utf8 is not None:
                        try:
                            self._utf8.decode(payload, final=bool(fin))
                        except UnicodeDecodeError:
                            raise ProtocolViolation(1007, "text is not UTF-8") from None
                    self._parts.append(payload)
                    self._size += length
                    if fin:
                        out.append((self._opcode, b"".join(self._parts)))
                        self._parts, self._size, self._utf8 = None, 0, None
        except ProtocolViolation as exc:
            self._buf, self._partial = b"", None
            return out, exc
        self._buf = buf[pos:]
        return out, None

    def _check_partial(self, frame: bytes) -> None:
        """Fail fast (1007) on a text frame whose arrived part is already invalid UTF-8,
        before the rest of it comes (RFC 6455 §8.1, Autobahn 6.4.3/6.4.4). `frame` is the
        masking key and the payload so far; each byte is checked once."""
        if self._partial is None:
            fresh: codecs.IncrementalDecoder = _utf8_decoder()
            if self._utf8 is not None:  # a continuation: start where the text stands
                fresh.setstate(self._utf8.getstate())
            self._partial = (0, fresh)
        checked, decoder = self._partial
        key, payload = frame[:4], frame[4:]
        if len(payload) <= checked:
            return
        turn = checked % 4
        try:
            decoder.decode(unmask(payload[checked:], key[turn:] + key[:turn]))
        except UnicodeDecodeError:
            raise ProtocolViolation(1007, "text is not UTF-8") from None
        self._partial = (len(payload), decoder)

    def _check(self, b0: int, b1: int, length: int) -> None:
        """Raise ProtocolViolation unless a frame with this header may come now."""
        opcode, fin = b0 & 0x0F, b0 & 0x80
        if b0 & 0x70:
            raise ProtocolViolation(1002, "reserved bits set")
        if not b1 & 0x80:
            raise ProtocolViolation(1002, "client frames must be masked")
        if opcode >= OP_CLOSE:
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise ProtocolViolation(1002, "unknown opcode")
            if not fin or length > 125:
                raise ProtocolViolation(1002, "control frames must be whole and short")
            return
        if opcode == OP_CONTINUATION:
            if self._parts is None:
                raise ProtocolViolation(1002, "continuation of no message")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._parts is not None:
                raise ProtocolViolation(1002, "new message inside a fragmented one")
        else:
            raise ProtocolViolation(1002, "unknown opcode")
        size = (self._size if opcode == OP_CONTINUATION else 0) + length
        if size > self._max:
            raise ProtocolViolation(1009, "message too big")
