"""The signal table: each kind's hex length, validation and report order."""
import pytest

from imaging import signals
from imaging.matching import match_kind

LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "pdq_dihedral": 64, "pdq_trimmed": 64, "pdq_crop": 64,
           "pdq_rotated": 64, "pdq_band": 64, "pdq_region": 64}


def test_every_kind_has_its_hex_length():
    assert {kind: signals.hex_length(kind) for kind in signals.SIGNALS} == LENGTHS


def test_exact_kinds_and_hash_columns():
    assert signals.EXACT_KINDS == ("sha256", "md5", "sha1")
    assert signals.HASH_COLUMNS == ("pdq", "md5", "sha1", "sha256")


@pytest.mark.parametrize("kind", sorted(LENGTHS))
def test_normalise_lowercases_and_keeps_lowercase(kind):
    value = ("0123456789ABCDEFabcdef" * 3)[: LENGTHS[kind]]
    assert signals.normalise(kind, value) == value.lower()
    assert signals.normalise(kind, value.lower()) == value.lower()
    assert signals.is_valid(kind, value)


@pytest.mark.parametrize(
    "kind, value, got",
    [
        ("pdq", "a" * 63, "got 63 characters"),
        ("pdq", "a" * 65, "got 65 characters"),
        ("md5", "", "got 0 characters"),
        ("sha1", "g" * 40, "got 'gggg"),
        ("sha256", " " + "a" * 63, "got ' aaa"),
        ("md5", " " + "a" * 32, "got 33 characters"),
        ("md5", "0x" + "a" * 30, "got '0x"),
        ("pdq", "\uff41" * 64, "got '\uff41"),
        ("pdq", 5, "got int"),
        ("sha1", None, "got NoneType"),
        ("md5", b"a" * 32, "got bytes"),
    ],
)
def test_normalise_rejects_with_the_kind_and_length(kind, value, got):
    with pytest.raises(ValueError, match=f"^{kind} must be {LENGTHS[kind]} hexadecimal characters, ") as error:
        signals.normalise(kind, value)
    assert got in str(error.value)
    assert not signals.is_valid(kind, value)


def test_an_unknown_kind_is_a_key_error():
    with pytest.raises(KeyError):
        signals.normalise("crc32", "00000000")


def test_kind_order_puts_plain_rules_first_and_joined_kinds_with_regions_last():
    named = ["sha256", "md5", "sha1", "pdq", "pdq_dihedral", "pdq_trimmed", "pdq_crop", "pdq_rotated", "pdq_band"]
    orders = [signals.kind_order(kind) for kind in named]
    assert orders == sorted(set(orders))
    joined = match_kind("pdq_trimmed", "pdq_dihedral")
    assert joined == "pdq_trimmed+dihedral"
    assert signals.kind_order(joined) == signals.kind_order("pdq_region") > signals.kind_order("pdq_band")
