"""English and Simplified Chinese for every string on the pages; numbers and dates per language."""

from datetime import datetime

LANGUAGES = ("en", "zh")

STRINGS: dict[str, tuple[str, str]] = {
    "app": ("citypair", "城市结对"),
    "tagline": ("City pairs on the Digital Silk Road", "数字丝绸之路城市结对合作"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "email": ("Email", "电子邮箱"),
    "password": ("Password", "密码"),
    "signin_failed": ("Wrong email or password.", "邮箱或密码错误。"),
    "throttled": ("Too many attempts. Try again in {seconds} s.", "尝试次数过多，请 {seconds} 秒后再试。"),
    "my_city": ("My city", "我的城市"),
    "dashboard": ("Dashboard", "工作台"),
    "directory": ("Directory", "城市名录"),
    "pilot_zones": ("Pilot zones", "试验区"),
    "map": ("Map", "地图"),
    "rounds": ("Programme rounds", "项目轮次"),
    "clusters": ("Clusters", "城市群"),
    "import": ("Import", "导入"),
    "search": ("Search", "搜索"),
    "search_hint": ("Name in any script", "任意文字的城市名"),
    "country": ("Country", "国家"),
    "corridor": ("Corridor", "走廊"),
    "any": ("Any", "不限"),
    "offers": ("Offers", "可提供"),
    "needs": ("Needs", "需求"),
    "level_at_least": ("at level ≥", "级别 ≥"),
    "population": ("Population", "人口"),
    "status": ("Status", "状态"),
    "verified": ("Verified", "已核实"),
    "stale": ("Stale (not confirmed for 12 months)", "过期（12 个月未确认）"),
    "results": ("{total} cities", "共 {total} 个城市"),
    "previous": ("Previous", "上一页"),
    "next": ("Next", "下一页"),
    "apply": ("Apply", "应用"),
    "themes": ("Cooperation themes", "合作主题"),
    "offer": ("Offer", "提供"),
    "need": ("Need", "需求"),
    "notes": ("Notes", "说明"),
    "indicators": ("Digital-economy indicators", "数字经济指标"),
    "languages": ("Languages", "语言"),
    "corridors": ("Belt and Road corridors", "“一带一路”走廊"),
    "capacity": ("Capacity (active partnerships)", "容量（可承担的合作数）"),
    "partners": ("Partners", "合作伙伴"),
    "existing_partners": ("Existing partners", "现有合作伙伴"),
    "contacts": ("Contacts", "联系方式"),
    "edit": ("Edit profile", "编辑资料"),
    "save": ("Save", "保存"),
    "saved": ("Saved.", "已保存。"),
    "fix_errors": ("Please fix the fields marked below.", "请修改下方标出的字段。"),
    "conflict": (
        "Someone changed this profile while you were editing (now version {version}). "
        "Your changes were not saved: reload, then make them again.",
        "在您编辑期间，该资料已被他人修改（当前版本 {version}）。您的修改未保存：请重新加载后再修改。",
    ),
    "name": ("Name", "名称"),
    "local_name": ("Local name", "当地名称"),
    "latitude": ("Latitude", "纬度"),
    "longitude": ("Longitude", "经度"),
    "timezone": ("Time zone", "时区"),
    "demo_note": (
        "Demo data: theme levels and indicators of this city are generated, not facts.",
        "演示数据：该城市的主题级别和指标为生成数据，并非事实。",
    ),
    "suggestions": ("Partner suggestions", "推荐合作城市"),
    "score": ("Score", "得分"),
    "why": ("Why", "原因"),
    "factors": ("Factors", "因素"),
    "constraints": ("Constraints", "约束"),
    "accept": ("Accept", "接受"),
    "decline": ("Decline", "拒绝"),
    "reason": ("Reason", "理由"),
    "decision_saved": ("Your decision is recorded.", "您的决定已记录。"),
    "explain_pair": ("Explain this pair", "解释此配对"),
    "no_suggestions": ("No suggestions yet.", "暂无推荐。"),
    "board": ("Board", "看板"),
    "proposal": ("Proposal", "提案"),
    "members": ("Member cities", "成员城市"),
    "milestones": ("Milestones", "里程碑"),
    "kpis": ("KPIs", "关键绩效指标"),
    "timeline": ("Timeline", "时间线"),
    "comments": ("Comments", "评论"),
    "confirm_membership": ("Confirm membership", "确认加入"),
    "comment": ("Comment", "评论"),
    "transition": ("Move to", "转为"),
    "needs_action": ("Proposals that need my action", "待我处理的提案"),
    "notifications": ("Notifications", "通知"),
    "completeness": ("Profile completeness", "资料完整度"),
    "network": ("Partnership network", "合作网络"),
    "run_round": ("Run a round", "运行一轮配对"),
    "min_score": ("Minimum score", "最低得分"),
    "pairs": ("Pairs", "配对"),
    "total": ("Total", "总计"),
    "unmatched": ("Unmatched cities", "未配对城市"),
    "upload": ("Upload", "上传"),
    "file": ("CSV or JSON file", "CSV 或 JSON 文件"),
    "all_or_nothing": ("All or nothing", "全部或全不"),
    "line": ("Line", "行"),
    "result": ("Result", "结果"),
    "errors": ("Errors", "错误"),
    "language": ("Language", "语言"),
    "not_allowed": ("You are not allowed to do this.", "您无权执行此操作。"),
    "not_found": ("Not found.", "未找到。"),
    "error": ("Something went wrong. Please try again.", "出现问题，请重试。"),
    "session_expired": ("Your session has ended. Please sign in again.", "会话已结束，请重新登录。"),
    "skip": ("Skip to content", "跳到正文"),
    "size": ("Size", "规模"),
    "cohesion": ("Cohesion", "凝聚度"),
    "shared_themes": ("Shared themes", "共同主题"),
    "theme": ("Theme", "主题"),
    "version": ("Version", "版本"),
    "published": ("published", "已发布"),
    "draft": ("draft", "草稿"),
    "retired": ("retired", "已停用"),
}


def t(key: str, lang: str, **values) -> str:
    en, zh = STRINGS[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text


def number(value, lang: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    if lang == "zh" and isinstance(value, int) and value >= 10_000:
        return f"{value / 10_000:,.1f} 万"
    return f"{int(value):,}"


def date(value: str | datetime | None, lang: str) -> str:
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{moment.year}年{moment.month}月{moment.day}日" if lang == "zh" else moment.strftime("%-d %b %Y")
