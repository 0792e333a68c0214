"""The words of every mail, in each language a user may choose: one table, so a translator finds them all here.

Placeholders are str.format fields; the values filled in (names, titles) are the user's own or other services'.
"""

LANGUAGES = ("en", "zh", "ru", "ar")
RIGHT_TO_LEFT = {"ar"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "hello": "Hello {name},",
        "hello_anonymous": "Hello,",
        "invitation.subject": "You are invited to citypair",
        "invitation.body": "You are invited to citypair as {roles}. Choose your password to start.",
        "invitation.action": "Choose my password",
        "invitation.expiry": "The link works once, for {hours} hours.",
        "reset.subject": "Reset your citypair password",
        "reset.body": "A new password was asked for your citypair account. Choose one with this link.",
        "reset.action": "Choose a new password",
        "reset.expiry": "The link works once, for {minutes} minutes. If you did not ask, ignore this mail.",
        "forced_reset.subject": "Your citypair password was reset",
        "forced_reset.body": "An administrator reset your password: the old one no longer works. Choose a new one.",
        "notification.subject": "citypair: {title}",
        "notification.action": "Open in citypair",
        "digest.subject": "citypair: your daily digest ({count})",
        "digest.body": "What happened since your last digest:",
        "unsubscribe": "You get this mail because of your notification settings. Stop these mails:",
        "unsubscribe.action": "Unsubscribe",
        "kind.action_needed": "proposals that need my action",
        "kind.match_decisions": "decisions on my cities' matches",
        "kind.proposal_transitions": "proposal transitions",
        "kind.stale_flags": "stale proposals",
        "kind.partner_suggestions": "new partner suggestions",
        "kind.digest": "the daily digest",
    },
    "zh": {
        "hello": "{name}，您好：",
        "hello_anonymous": "您好：",
        "invitation.subject": "您受邀加入 citypair",
        "invitation.body": "您受邀以{roles}身份加入 citypair。请设置密码以开始使用。",
        "invitation.action": "设置密码",
        "invitation.expiry": "此链接仅可使用一次，{hours} 小时内有效。",
        "reset.subject": "重置您的 citypair 密码",
        "reset.body": "有人为您的 citypair 账户申请了新密码。请通过此链接设置新密码。",
        "reset.action": "设置新密码",
        "reset.expiry": "此链接仅可使用一次，{minutes} 分钟内有效。如果不是您本人申请，请忽略此邮件。",
        "forced_reset.subject": "您的 citypair 密码已被重置",
        "forced_reset.body": "管理员重置了您的密码，旧密码已失效。请设置新密码。",
        "notification.subject": "citypair：{title}",
        "notification.action": "在 citypair 中打开",
        "digest.subject": "citypair：{count} 条更新",
        "digest.body": "自上次摘要以来的动态：",
        "unsubscribe": "您收到此邮件是因为您的通知设置。不再接收此类邮件：",
        "unsubscribe.action": "退订",
        "kind.action_needed": "需要我处理的提案",
        "kind.match_decisions": "我的城市配对的决定",
        "kind.proposal_transitions": "提案状态变化",
        "kind.stale_flags": "停滞的提案",
        "kind.partner_suggestions": "新的伙伴推荐",
        "kind.digest": "每日摘要",
    },
    "ru": {
        "hello": "Здравствуйте, {name}!",
        "hello_anonymous": "Здравствуйте!",
        "invitation.subject": "Приглашение в citypair",
        "invitation.body": "Вас пригласили в citypair с ролью: {roles}. Чтобы начать, задайте пароль.",
        "invitation.action": "Задать пароль",
        "invitation.expiry": "Ссылка действует один раз, {hours} ч.",
        "reset.subject": "Сброс пароля citypair",
        "reset.body": "Для вашей учётной записи citypair запрошен новый пароль. Задайте его по этой ссылке.",
        "reset.action": "Задать новый пароль",
        "reset.expiry": "Ссылка действует один раз, {minutes} мин. Если сброс просили не вы, удалите письмо.",
        "forced_reset.subject": "Ваш пароль citypair сброшен",
        "forced_reset.body": "Администратор сбросил ваш пароль: старый больше не действует. Задайте новый.",
        "notification.subject": "citypair: {title}",
        "notification.action": "Открыть в citypair",
        "digest.subject": "citypair: обновлений — {count}",
        "digest.body": "Что произошло с последней сводки:",
        "unsubscribe": "Вы получили это письмо согласно настройкам уведомлений. Отписаться от таких писем:",
        "unsubscribe.action": "Отписаться",
        "kind.action_needed": "предложения, ждущие моих действий",
        "kind.match_decisions": "решения по парам моих городов",
        "kind.proposal_transitions": "изменения статуса предложений",
        "kind.stale_flags": "застывшие предложения",
        "kind.partner_suggestions": "новые рекомендации партнёров",
        "kind.digest": "ежедневная сводка",
    },
    "ar": {
        "hello": "مرحبًا {name}،",
        "hello_anonymous": "مرحبًا،",
        "invitation.subject": "دعوة للانضمام إلى citypair",
        "invitation.body": "لقد دُعيت للانضمام إلى citypair بصفة {roles}. اختر كلمة المرور للبدء.",
        "invitation.action": "اختيار كلمة المرور",
        "invitation.expiry": "يعمل الرابط مرة واحدة، لمدة {hours} ساعة.",
        "reset.subject": "إعادة تعيين كلمة مرور citypair",
        "reset.body": "طُلبت كلمة مرور جديدة لحسابك في citypair. اختر واحدة عبر هذا الرابط.",
        "reset.action": "اختيار كلمة مرور جديدة",
        "reset.expiry": "يعمل الرابط مرة واحدة، لمدة {minutes} دقيقة. إن لم تطلب ذلك فتجاهل هذه الرسالة.",
        "forced_reset.subject": "أُعيد تعيين كلمة مرورك في citypair",
        "forced_reset.body": "أعاد أحد المسؤولين تعيين كلمة مرورك، ولم تعد القديمة تعمل. اختر كلمة جديدة.",
        "notification.subject": "citypair: {title}",
        "notification.action": "فتح في citypair",
        "digest.subject": "citypair: {count} تحديثات",
        "digest.body": "ما حدث منذ آخر ملخص:",
        "unsubscribe": "تصلك هذه الرسالة بسبب إعدادات الإشعارات لديك. لإيقاف هذه الرسائل:",
        "unsubscribe.action": "إلغاء الاشتراك",
        "kind.action_needed": "مقترحات تحتاج إلى إجراء مني",
        "kind.match_decisions": "قرارات بشأن شراكات مدني",
        "kind.proposal_transitions": "تغيّرات حالة المقترحات",
        "kind.stale_flags": "المقترحات المتوقفة",
        "kind.partner_suggestions": "اقتراحات شركاء جديدة",
        "kind.digest": "الملخص اليومي",
    },
}

ROLE_NAMES: dict[str, dict[str, str]] = {
    "en": {"admin": "administrator", "coordinator": "coordinator", "official": "official", "observer": "observer"},
    "zh": {"admin": "管理员", "coordinator": "协调员", "official": "城市官员", "observer": "观察员"},
    "ru": {
        "admin": "администратор",
        "coordinator": "координатор",
        "official": "представитель города",
        "observer": "наблюдатель",
    },
    "ar": {"admin": "مسؤول", "coordinator": "منسق", "official": "ممثل مدينة", "observer": "مراقب"},
}


def text(language: str, key: str, **values) -> str:
    """The text `key` in `language` (English if the language is unknown), its placeholders filled in."""
    table = TEXTS.get(language, TEXTS["en"])
    return table[key].format(**values)


def roles(language: str, names: list[str]) -> str:
    table = ROLE_NAMES.get(language, ROLE_NAMES["en"])
    return ", ".join(table.get(name, name) for name in names)
