"""Convex document IDs (PROTOCOL §2.1, QUERIES Appendix A).

binary = VInt(table_number) ++ internal_id[16] ++ fletcher16 footer (2 bytes, little-endian),
then base32 with the lowercase Crockford alphabet, RFC 4648 bit packing, no padding.
"""

from __future__ import annotations

import functools
import os

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DIGIT = {char: index for index, char in enumerate(ALPHABET)}
INTERNAL_ID_LENGTH = 16
MIN_ID_LENGTH = 31
MAX_ID_LENGTH = 37
MAX_TABLE_NUMBER = (1 << 32) - 1
_MS_PER_DAY = 86_400_000


class InvalidId(ValueError):
    """The string is not a valid Convex document ID; the message names the string."""


def _vint_encode(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _vint_decode(data: bytes) -> tuple[int, int]:
    """Returns (number, bytes consumed); raises ValueError if unterminated or too big."""
    number = 0
    for index, byte in enumerate(data[:5]):
        number |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return number, index + 1
    raise ValueError("table number is not a valid VInt")


def fletcher16(data: bytes) -> int:
    c0 = c1 = 0
    for byte in data:
        c0 = (c0 + byte) % 256
        c1 = (c1 + c0) % 256
    return (c1 << 8) | c0


_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]  # 10 bits -> two characters


def base32_encode(data: bytes) -> str:
    """RFC 4648 bit packing in the Crockford alphabet, no padding; ten bits per step."""
    total_bits = len(data) * 8
    length = -(-total_bits // 5)
    padded = length + (length & 1)  # an even number of 5-bit digits
    bits = (int.from_bytes(data, "big") if data else 0) << (padded * 5 - total_bits)
    pairs = _PAIRS
    text = "".join(pairs[(bits >> shift) & 1023] for shift in range(padded * 5 - 10, -1, -10))
    return text[:length]


def base32_decode(text: str) -> bytes:
    value = 0
    for char in text:
        digit = _DIGIT.get(char)
        if digit is None:
            raise ValueError(f"invalid character {char!r}")
        value = (value << 5) | digit
    total_bits = len(text) * 5
    length = total_bits // 8
    return (value >> (total_bits - length * 8)).to_bytes(length, "big")


def encode_id(table_number: int, internal_id: bytes) -> str:
    if isinstance(table_number, bool) or not isinstance(table_number, int):
        raise ValueError(f"Table number must be an int, got {table_number!r}")
    if not 1 <= table_number <= MAX_TABLE_NUMBER:
        raise ValueError(f"Table number {table_number} is out of range 1..{MAX_TABLE_NUMBER}")
    if not isinstance(internal_id, (bytes, bytearray)) or len(internal_id) != INTERNAL_ID_LENGTH:
        raise ValueError(f"Internal id must be {INTERNAL_ID_LENGTH} bytes, got {internal_id!r}")
    body = _vint_encode(table_number) + bytes(internal_id)
    return base32_encode(body + fletcher16(body).to_bytes(2, "little"))


@functools.lru_cache(maxsize=65536)
def _decode_or_raise(text: str) -> tuple[int, bytes]:
    """Cached: one request decodes the same id several times (validators, then the engine)."""
    if not MIN_ID_LENGTH <= len(text) <= MAX_ID_LENGTH:
        raise ValueError(f"length {len(text)} is not between {MIN_ID_LENGTH} and {MAX_ID_LENGTH}")
    data = base32_decode(text)
    if base32_encode(data) != text:
        raise ValueError("not canonical base32")
    table_number, used = _vint_decode(data)
    if len(data) - used != INTERNAL_ID_LENGTH + 2:
        raise ValueError("wrong length for its table number")
    body, footer = data[:-2], data[-2:]
    if fletcher16(body) != int.from_bytes(footer, "little"):
        raise ValueError("checksum mismatch")
    internal_id = data[used:-2]
    if not 1 <= table_number <= MAX_TABLE_NUMBER or _vint_encode(table_number) != data[:used]:
        raise ValueError("table number is not canonical")
    return table_number, internal_id


def decode_id(text: str) -> tuple[int, bytes]:
    """ID string -> (table_number, internal_id). Raises InvalidId."""
    if not isinstance(text, str):
        raise InvalidId(f"Invalid ID {text!r}: not a string")
    try:
        return _decode_or_raise(text)
    except ValueError as error:
        raise InvalidId(f"Invalid ID {text!r}: {error}") from None


def is_id(text: object) -> bool:
    try:
        decode_id(text)  # type: ignore[arg-type]
    except InvalidId:
        return False
    return True


def new_internal_id(now_ms: float) -> bytes:
    """14 random bytes then the 2-byte big-endian day number since the epoch."""
    day = int(now_ms // _MS_PER_DAY) & 0xFFFF
    return os.urandom(14) + day.to_bytes(2, "big")
