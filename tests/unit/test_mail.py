"""identity's mails, composed without a server: every language says everything, HTML escapes what others wrote,
Arabic runs right to left, retries wait longer each time, and each notified event falls under one mail kind."""

from datetime import timedelta

import pytest

from citypair_identity import mail
from citypair_identity.config import Settings
from citypair_identity.mail_sender import as_message, retry_wait
from citypair_identity.mail_texts import LANGUAGES, ROLE_NAMES, TEXTS
from citypair_identity.models import MailOutbox
from citypair_identity.notifications import NOTIFIED_TYPES, mail_kind
from citypair_identity.preferences import KINDS


def test_every_language_has_every_text_with_the_same_placeholders():
    english = TEXTS["en"]
    for language in LANGUAGES:
        assert TEXTS[language].keys() == english.keys(), language
        assert ROLE_NAMES[language].keys() == ROLE_NAMES["en"].keys(), language
        for key, text in TEXTS[language].items():
            assert sorted(_fields(text)) == sorted(_fields(english[key])), (language, key)


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def test_a_title_from_elsewhere_is_escaped_in_html_and_kept_as_is_in_plain_text():
    unsubscribe = mail.unsubscribe_note("en", kind="stale_flags", url="https://c.example/unsubscribe/t")
    title = '<script>alert("x")</script> & co'
    letter = mail.notification("en", name="Ana", title=title, url="https://c.example/p/1", unsubscribe=unsubscribe)
    assert "<script>" not in letter.html_body and "&lt;script&gt;" in letter.html_body
    assert title in letter.text_body and "Hello Ana," in letter.text_body
    assert letter.headers == {"List-Unsubscribe": "<https://c.example/unsubscribe/t>"}
    assert "stale proposals" in letter.text_body  # the kind the link turns off


def test_arabic_mails_run_right_to_left_and_others_left_to_right():
    arabic = mail.invitation("ar", name="", role_names=["official"], url="https://c.example/i/t", hours=72)
    assert 'dir="rtl"' in arabic.html_body and 'lang="ar"' in arabic.html_body
    assert "ممثل مدينة" in arabic.text_body and "72" in arabic.text_body
    chinese = mail.password_reset("zh", name="李伟", url="https://c.example/r/t", minutes=60, forced=False)
    assert 'dir="ltr"' in chinese.html_body and chinese.subject == "重置您的 citypair 密码"


def test_the_message_is_plain_text_and_html_with_a_message_id_per_key():
    letter = mail.compose("en", subject="Hi", paragraphs=("body",))
    row = MailOutbox(
        key="k1",
        recipient="a@b.example",
        subject=letter.subject,
        text_body=letter.text_body,
        html_body=letter.html_body,
        headers={},
    )
    message = as_message(row, "citypair <noreply@citypair.example>")
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == as_message(row, "citypair <noreply@citypair.example>")["Message-ID"]
    assert message["Message-ID"].endswith("@citypair.example>")


def test_retries_wait_twice_as_long_each_time_up_to_the_longest():
    settings = Settings(mail_retry_first_seconds=2, mail_retry_max_seconds=30)
    waits = [retry_wait(settings, attempts) for attempts in range(1, 7)]
    assert waits == [timedelta(seconds=s) for s in (2, 4, 8, 16, 30, 30)]
    assert retry_wait(settings, 10_000) == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("event_type", "decides", "kind"),
    [
        ("pilot_zones.proposal.submitted.v1", True, "action_needed"),
        ("pilot_zones.proposal.submitted.v1", False, "proposal_transitions"),
        ("pilot_zones.proposal.changes_requested.v1", False, "action_needed"),
        ("pilot_zones.proposal.approved.v1", False, "proposal_transitions"),
        ("pilot_zones.proposal.stale_flagged.v1", True, "stale_flags"),
        ("matching.match.declined.v1", False, "match_decisions"),
    ],
)
def test_each_notified_event_is_one_mail_kind(event_type, decides, kind):
    assert mail_kind(event_type, decides=decides) == kind


def test_every_notified_event_type_has_a_kind_users_can_choose_for():
    assert {mail_kind(t, decides=d) for t in NOTIFIED_TYPES for d in (True, False)} <= set(KINDS)
