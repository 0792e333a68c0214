"""English and Simplified Chinese for every string on the pages, and for the API's keys (themes, corridors,
indicators, matching factors, constraints, statuses, decisions and their reasons); numbers and dates per language.

The keys are the APIs' values, defined once in citypair_shared (vocabulary, themes, geography); the pages keep only
their names, and take the values themselves from shared or the APIs (tests/unit/test_web_vocabulary.py).
"""

from datetime import datetime

from citypair_shared.geography import CORRIDORS, INDICATORS
from citypair_shared.themes import THEMES

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
    "value": ("Value", "数值"),
}

_THEMES_ZH = {
    "broadband": "宽带与信息基础设施",
    "smart_city": "智慧城市",
    "ecommerce": "跨境电子商务（海关、支付、仓储）",
    "telemedicine": "远程医疗",
    "internet_plus": "“互联网+”：农业、制造业和服务业数字化转型",
    "iot": "物联网",
    "ai": "人工智能",
    "innovation": "互联网创业与研发创新",
    "msme": "中小微企业",
    "digital_skills": "数字技能",
    "ict_investment": "信息通信技术投资（含政府和社会资本合作）",
    "digital_inclusion": "数字包容",
    "open_data": "政策透明、政府数据开放与网上采购",
    "standards": "标准",
    "cybersecurity": "信任、隐私与数据保护",
    "culture_exchange": "数字内容与人文交流",
    "logistics": "国际运输与物流",
}
_CORRIDORS_ZH = {
    "new_eurasian_land_bridge": "新亚欧大陆桥",
    "china_mongolia_russia": "中蒙俄",
    "china_central_asia_west_asia": "中国—中亚—西亚",
    "china_indochina_peninsula": "中国—中南半岛",
    "china_pakistan": "中巴",
    "bangladesh_china_india_myanmar": "孟中印缅",
    "maritime_silk_road": "21世纪海上丝绸之路",
}
_INDICATORS_ZH = {
    "fixed_broadband_per_100": "每百人固定宽带用户数",
    "mobile_broadband_per_100": "每百人移动宽带用户数",
    "internet_users_pct": "互联网用户占比",
    "ecommerce_retail_share_pct": "电子商务占零售额比重",
    "ict_gdp_share_pct": "信息通信技术占 GDP 比重",
    "digital_skills_index": "数字技能指数",
}
TERMS: dict[str, dict[str, tuple[str, str]]] = {
    "theme": {key: (label, _THEMES_ZH[key]) for key, label in THEMES.items()},
    "corridor": {key: (label, _CORRIDORS_ZH[key]) for key, label in CORRIDORS.items()},
    "indicator": {key: (spec[0], _INDICATORS_ZH[key]) for key, spec in INDICATORS.items()},
    "factor": {
        "complementarity": ("Complementarity, both ways", "双向互补"),
        "shared_priorities": ("Shared priorities", "共同优先事项"),
        "distance": ("Distance", "距离"),
        "corridor": ("Shared corridor", "同一走廊"),
        "language": ("Shared language", "共同语言"),
        "timezone": ("Working hours overlap", "工作时间重叠"),
        "country_affinity": ("Country-pair ties", "两国城市合作基础"),
        "network": ("Common partners", "共同伙伴"),
        "realism": ("Like real partnerships", "与现实结对的相似度"),
        "hub_damping": ("Hub damping", "枢纽城市抑制"),
    },
    "check": {
        "not_itself": ("Not the city itself", "不是城市本身"),
        "published": ("Both profiles published", "双方资料均已发布"),
        "not_partners": ("Not partners already", "尚未结对"),
        "not_declined": ("Not declined in the last 12 months", "近 12 个月内未被拒绝"),
        "city_capacity": ("The city has room for a partner", "本城市尚有结对容量"),
        "partner_capacity": ("The partner has room for a partner", "伙伴城市尚有结对容量"),
        "countries_not_excluded": ("Neither side excludes the other's country", "双方均未排除对方国家"),
        "same_country_allowed": ("Same-country rule", "同国结对规则"),
        "eligible": ("Eligible under the programme's rules", "符合项目资格规则"),
        "both_gain": ("Both cities gain", "双方均受益"),
    },
    "city_status": {
        "draft": ("Draft", "草稿"),
        "published": ("Published", "已发布"),
        "retired": ("Retired", "已停用"),
    },
    "status": {
        "draft": ("Draft", "草稿"),
        "submitted": ("Submitted", "已提交"),
        "under_review": ("Under review", "审核中"),
        "changes_requested": ("Changes requested", "需修改"),
        "approved": ("Approved", "已批准"),
        "rejected": ("Rejected", "已驳回"),
        "active": ("Active", "实施中"),
        "completed": ("Completed", "已完成"),
        "withdrawn": ("Withdrawn", "已撤回"),
    },
    "decision": {
        "accept": ("Accepted", "已接受"),
        "decline": ("Declined", "已拒绝"),
    },
    "match_status": {
        "open": ("Open", "待定"),
        "accepted": ("Accepted by both", "双方已接受"),
        "declined": ("Declined", "已拒绝"),
    },
    "reason": {
        "not_a_priority": ("Not a priority", "非优先事项"),
        "themes_do_not_fit": ("The themes do not fit", "主题不匹配"),
        "too_far": ("Too far", "距离太远"),
        "language": ("Language", "语言障碍"),
        "no_capacity": ("No capacity", "没有余力"),
        "existing_cooperation_elsewhere": ("Already cooperating elsewhere", "已有其他合作"),
        "policy": ("Policy", "政策原因"),
        "other": ("Other", "其他"),
        "complementary_themes": ("Complementary themes", "主题互补"),
        "shared_priorities": ("Shared priorities", "共同优先事项"),
        "existing_ties": ("Existing ties", "已有联系"),
        "corridor": ("Same corridor", "同一走廊"),
    },
}


def t(key: str, lang: str, **values) -> str:
    en, zh = STRINGS[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text


def term(kind: str, key: str, lang: str) -> str:
    """An API key of `kind` (see TERMS) in `lang`; the key itself if it is new to the pages."""
    en, zh = TERMS[kind].get(key, (key, key))
    return zh if lang == "zh" else en


def theme_flow(flow: dict, lang: str) -> str:
    """One theme where one city offers what the other needs, as a sentence (the API's `text` is English)."""
    theme = term("theme", flow["theme"], lang)
    if lang == "zh":
        return f"{flow['giver']}在“{theme}”方面可提供 {flow['offer']} 级，{flow['taker']}的需求为 {flow['need']} 级"
    return f"{flow['giver']} offers {theme} at {flow['offer']}, {flow['taker']} needs it at {flow['need']}"


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
