"""identity's mails, composed without a server: each language says a count in its own plural forms and a
notification's title in its own words, HTML escapes what others wrote, Arabic runs right to left, retries wait longer
each time, and each notified event falls under one mail kind. (That every message is translated:
tests/unit/test_catalogs.py.)"""

from datetime import timedelta

import pytest

from citypair_identity import mail
from citypair_identity.config import Settings
from citypair_identity.mail_sender import as_message, retry_wait
from citypair_identity.models import MailOutbox
from citypair_identity.notifications import NOTIFIED_TYPES, SUGGESTIONS, mail_kind, title_in
from citypair_identity.preferences import KINDS

UNSUBSCRIBE = mail.Unsubscribe("text", "label", "https://c.example/unsubscribe/t")


def test_a_count_takes_each_languages_plural_form():
    def subject(language: str, count: int) -> str:
        return mail.digest(language, name="", items=[mail.Link("t", "")] * count, unsubscribe=UNSUBSCRIBE).subject

    assert [subject("en", n) for n in (1, 2)] == ["citypair: your daily digest (1)", "citypair: your daily digest (2)"]
    assert subject("zh", 3) == "citypair：3 条更新"
    assert [subject("ar", n) for n in (1, 2, 3, 11, 100)] == [
        "citypair: تحديث واحد",
        "citypair: تحديثان",
        "citypair: 3 تحديثات",
        "citypair: 11 تحديثًا",
        "citypair: 100 تحديث",
    ]
    reset = mail.password_reset("ar", name="", url="https://c.example/r/t", minutes=2, forced=False)
    assert "لمدة دقيقتين." in reset.text_body


def test_a_notifications_title_is_said_in_the_users_language_but_for_what_others_named():
    assert title_in("zh", "pilot_zones.proposal.approved.v1", "Xi'an–Almaty: AI corridor: approved") == (
        "Xi'an–Almaty: AI corridor：已批准"
    )
    assert title_in("ru", "matching.match.declined.v1", "Match declined") == "Пара отклонена"
    assert title_in("ar", SUGGESTIONS, "New partner suggestion: Almaty") == "شريك مقترح جديد: Almaty"
    assert (
        title_in("en", "pilot_zones.proposal.stale_flagged.v1", "Corridor: stale flagged") == "Corridor: stale flagged"
    )
    # A kind with no name yet, or a title of another shape, stays as it was written.
    assert title_in("zh", "pilot_zones.proposal.renamed.v1", "X: renamed") == "X: renamed"
    assert title_in("zh", "matching.match.accepted.v1", "Something else") == "Something else"


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
