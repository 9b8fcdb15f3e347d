import pytest
from hypothesis import given, settings, strategies as st

from console import ids
from console.ids import InvalidId, decode_id, encode_id, is_id, new_internal_id

table_numbers = st.one_of(st.integers(1, 2**31), st.sampled_from([1, 127, 128, 10001, 2**31]))
internal_ids = st.binary(min_size=16, max_size=16)


def test_known_vector_from_convex():
    # From Convex's id-encoding stability test: table 1017, internal id 251^k mod 256.
    expected = [251]
    for _ in range(15):
        expected.append(expected[-1] * 251 % 256)
    assert decode_id("z43zp6c3e75gkmz1kfwj6mbbx5sw281h") == (1017, bytes(expected))
    assert encode_id(1017, bytes(expected)) == "z43zp6c3e75gkmz1kfwj6mbbx5sw281h"


def test_lengths():
    assert len(encode_id(10001, bytes(16))) == 32
    assert len(encode_id(1, bytes(16))) == 31
    assert len(encode_id(2**32 - 1, bytes(16))) == 37


def test_encode_rejects_bad_input():
    for number in (0, -1, 2**32, True):
        with pytest.raises(ValueError):
            encode_id(number, bytes(16))
    with pytest.raises(ValueError):
        encode_id(10001, bytes(15))


@pytest.mark.parametrize("bad", ["", "abc", "z43zp6c3e75gkmz1kfwj6mbbx5sw281", "x" * 40, None, 12])
def test_rejects_garbage(bad):
    assert not is_id(bad)
    with pytest.raises(InvalidId) as info:
        decode_id(bad)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_new_internal_id():
    day = 20000
    first = new_internal_id(day * 86_400_000 + 5)
    second = new_internal_id(day * 86_400_000 + 5)
    assert len(first) == 16 and first != second
    assert int.from_bytes(first[-2:], "big") == day
    assert is_id(encode_id(10001, first))


@settings(max_examples=300)
@given(table_numbers, internal_ids)
def test_roundtrip(table_number, internal_id):
    text = encode_id(table_number, internal_id)
    assert 31 <= len(text) <= 37
    assert set(text) <= set(ids.ALPHABET)
    assert decode_id(text) == (table_number, internal_id)
    assert is_id(text)


@settings(max_examples=300)
@given(table_numbers, internal_ids, st.data())
def test_mutations_are_rejected(table_number, internal_id, data):
    text = encode_id(table_number, internal_id)
    index = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.sampled_from(ids.ALPHABET).filter(lambda c: c != text[index]))
    changed = text[:index] + replacement + text[index + 1:]
    assert not is_id(changed)
    cut = data.draw(st.integers(1, len(text) - 1))
    assert not is_id(text[:-cut])
    assert not is_id(text + data.draw(st.sampled_from(ids.ALPHABET)))
    if text != text.upper():
        assert not is_id(text.upper())
    bad_char = data.draw(st.sampled_from("ilou!-_ =IO"))
    assert not is_id(text[:index] + bad_char + text[index + 1:])


def _base32_reference(data: bytes) -> str:
    """Bit by bit, as the spec reads: 5-bit groups, big-endian, zero-padded at the end."""
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(ids.ALPHABET[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))


@given(st.binary(max_size=40))
def test_base32_matches_the_bitwise_reference(data):
    assert ids.base32_encode(data) == _base32_reference(data)
    assert ids.base32_decode(ids.base32_encode(data)) == data
