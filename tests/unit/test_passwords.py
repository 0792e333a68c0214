"""The password policy (NIST SP 800-63B): length, the common-password list, repetition, the account's own words."""

import pytest
from pydantic import ValidationError

from citypair_identity.passwords import MIN_LENGTH, email_words, weakness
from citypair_identity.schemas import PasswordChange, UserCreate


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short pass", "at least 12"),
        ("q1w2e3r4t5y6", "most common"),  # on the shipped list
        ("1QAZ2WSX3EDC", "most common"),  # the list is matched without regard to case
        ("aaaaaaaaaaaaaaaa", "repetitive"),
        ("abababababababab", "repetitive"),
        ("abcdefghijklmnop", "sequential"),
        ("78901234567890", "sequential"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password, why):
    assert why in weakness(password)


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "Silk-road 2026 pilot", "长安到撒马尔罕的数字丝绸之路"]
)
def test_a_passphrase_needs_no_digit_capital_or_symbol(password):
    assert weakness(password) is None


def test_the_accounts_own_words_are_refused_and_short_parts_ignored():
    words = email_words("zhang.wei@xian.gov.cn")
    assert "zhang" in words and "wei" in words
    assert "name" in weakness("Zhang-the-official-2026", context=words)
    assert weakness("wei is a word of mine", context=words) is None  # "wei": too short to be a hint


def test_a_new_user_and_a_new_password_take_the_policy_naming_the_field():
    with pytest.raises(ValidationError) as created:
        UserCreate(email="zhang.wei@xian.gov.cn", password="zhang.wei-2026-xian", roles=["official"])
    assert [e["loc"] for e in created.value.errors()] == [("password",)]
    with pytest.raises(ValidationError) as changed:
        PasswordChange(current_password="anything", new_password="x" * (MIN_LENGTH - 1))
    assert [e["loc"] for e in changed.value.errors()] == [("new_password",)]
