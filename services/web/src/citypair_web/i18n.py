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
    # Accounts (accounts.py)
    "my_account": ("My account", "我的账户"),
    "users": ("Users", "用户"),
    "person_name": ("Name", "姓名"),
    "mail_language": ("Language of my e-mails", "邮件语言"),
    "mail_notifications": ("E-mail notifications", "邮件通知"),
    "suggestion_min_score": ("Suggest partner cities scoring at least (0–1)", "推荐合作城市的最低得分（0–1）"),
    "change_password": ("Change password", "修改密码"),
    "current_password": ("Current password", "当前密码"),
    "new_password": ("New password", "新密码"),
    "password_hint": (
        "A phrase of several words is long, easy to remember and hard to guess; common passwords are refused.",
        "由几个词组成的短语够长、好记且难猜；常见密码会被拒绝。",
    ),
    "password_changed": (
        "Your password is changed. You stay signed in here; every other session has ended.",
        "密码已修改。您在此处保持登录，其他会话均已结束。",
    ),
    "forgot_password": ("Forgot password?", "忘记密码？"),
    "forgot_lead": (
        "Enter your e-mail address: we send you a link to set a new password.",
        "请输入您的电子邮箱，我们将发送设置新密码的链接。",
    ),
    "send_link": ("Send the link", "发送链接"),
    "reset_mailed": (
        "If an account has this address, a link to set a new password is on its way. It works once, for one hour.",
        "如果有账户使用此邮箱，设置新密码的链接已发出。链接仅可使用一次，一小时内有效。",
    ),
    "set_password": ("Set your password", "设置密码"),
    "invitation_lead": (
        "You are invited to citypair. Choose a password to finish your account.",
        "您受邀加入城市结对平台。请设置密码以完成账户创建。",
    ),
    "create_account": ("Create my account", "创建账户"),
    "account_created": (
        "Your account is ready: sign in with your e-mail address and the new password.",
        "账户已创建：请使用您的电子邮箱和新密码登录。",
    ),
    "new_password_title": ("Set a new password", "设置新密码"),
    "password_set": ("Your new password is set: sign in with it.", "新密码已设置，请用它登录。"),
    "link_gone": (
        "This link has been used, has expired or is unknown. Ask for a new one.",
        "此链接已使用、已过期或无效，请重新申请。",
    ),
    "unsubscribe": ("Unsubscribe", "退订"),
    "unsubscribe_lead": (
        "Stop this kind of e-mail? Press the button; you can turn it on again in My account.",
        "停止接收此类邮件？请按下按钮；之后可在“我的账户”中重新开启。",
    ),
    "unsubscribed": (
        "Done: no more e-mails about “{kind}”. My account turns them on again.",
        "已退订：不再发送有关“{kind}”的邮件。可在“我的账户”中重新开启。",
    ),
    "invite_user": ("Invite a user", "邀请用户"),
    "invite": ("Send the invitation", "发送邀请"),
    "invitation_language": ("Language of the invitation", "邀请邮件的语言"),
    "invited": ("Invitation mailed to {email}.", "已向 {email} 发送邀请。"),
    "pending_invitations": ("Pending invitations", "待接受的邀请"),
    "expires": ("Expires", "到期"),
    "roles": ("Roles", "角色"),
    "city_ids": (
        "City IDs, comma-separated (an ID is the last part of a city page's address)",
        "城市 ID，以逗号分隔（城市页面地址的最后一段）",
    ),
    "cities_of_user": ("Cities", "城市"),
    "name_or_email": ("Name or e-mail", "姓名或邮箱"),
    "users_found": ("Users found: {total}", "共 {total} 位用户"),
    "account_state": ("Account", "账户"),
    "active_account": ("Active", "正常"),
    "disabled_account": ("Disabled", "已停用"),
    "disable": ("Disable", "停用"),
    "enable": ("Enable", "启用"),
    "force_reset": ("Force a password reset", "强制重置密码"),
    "reset_forced": (
        "That user's password no longer works, their sessions have ended, and a reset link is mailed to them.",
        "该用户的密码已失效，会话已结束，重置链接已发送给该用户。",
    ),
    "user_saved": ("The user's changes are saved; they sign in again.", "用户的修改已保存；该用户需重新登录。"),
    "dev_mail": ("Mails kept by the local mail server (development)", "本地邮件服务器保存的邮件（开发用）"),
    "dev_mail_note": (
        "Shown to anyone, signed in or not: only `citypair run` turns this page on.",
        "任何人（无论是否登录）均可查看：仅 `citypair run` 会开启此页面。",
    ),
    "mail_from": ("From", "发件人"),
    "mail_to": ("To", "收件人"),
    "mail_date": ("Date", "日期"),
    "no_mail": ("No mail yet.", "暂无邮件。"),
    "signin_failed": ("Wrong email or password.", "邮箱或密码错误。"),
    "throttled": ("Too many attempts. Try again in {seconds} s.", "尝试次数过多，请 {seconds} 秒后再试。"),
    "my_city": ("My city", "我的城市"),
    "dashboard": ("Dashboard", "工作台"),
    "directory": ("Directory", "城市名录"),
    "pilot_zones": ("Pilot zones", "试验区"),
    "map": ("Map", "地图"),
    # The map (map_page.py, static/map.js)
    "map_label": ("World map of the cities", "城市世界地图"),
    "map_help": (
        "Arrow keys move the map, + and − zoom, 0 shows the whole world. Enter opens the group or city at the "
        "centre (a group zooms in). Drag and the mouse wheel work too.",
        "方向键移动地图，+ 和 − 缩放，0 显示全世界。回车打开位于中心的城市组或城市（城市组会放大）。"
        "也可拖动地图或用鼠标滚轮缩放。",
    ),
    "zoom_in": ("Zoom in", "放大"),
    "zoom_out": ("Zoom out", "缩小"),
    "whole_world": ("Whole world", "全世界"),
    "map_as_list": ("The same cities as a list", "以列表查看这些城市"),
    "back_to_map": ("Back to the map", "返回地图"),
    "map_status": ("{shown} of {total} cities shown · zoom {zoom}×", "显示 {shown} / {total} 个城市 · 缩放 {zoom}×"),
    "map_centre": ("At the centre: {name}", "中心：{name}"),
    "map_group": ("{count} cities here", "此处有 {count} 个城市"),
    "map_loading": ("Loading the cities…", "正在加载城市…"),
    "map_load_failed": (
        "The cities could not be loaded. Reload the page, or use the list.",
        "无法加载城市。请刷新页面，或使用列表。",
    ),
    "map_noscript": (
        "The map needs JavaScript; the list shows the same cities.",
        "地图需要 JavaScript；列表显示相同的城市。",
    ),
    "map_card": ("City", "城市"),
    "map_card_hint": (
        "Choose a city on the map (click it, or centre it and press Enter): its themes and partnerships show here.",
        "在地图上选择一个城市（点击它，或将其移到中心后按回车），此处将显示其主题和合作关系。",
    ),
    "partnerships": ("Partnerships", "合作关系"),
    "city_page": ("City page", "城市页面"),
    "none": ("None", "无"),
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
    # Pilot zones (proposals.py)
    "propose": ("Propose a pilot zone", "提议试验区"),
    "edit_proposal": ("Edit the proposal", "编辑提案"),
    "who_drafts": (
        "Only an official of one of the member cities may draft a proposal.",
        "只有成员城市之一的官员才能起草提案。",
    ),
    "duplicate_proposal": ("An open proposal for these cities exists already.", "这些城市已有一个进行中的提案。"),
    "open_existing": ("Open it", "打开该提案"),
    "conflict_title": ("Someone else saved this proposal meanwhile", "在此期间他人已保存此提案"),
    "proposal_conflict": (
        "Your changes are not saved yet. Below, what differs: the proposal as it is now (version {version}) "
        "and what you wrote. The form keeps what you wrote: save it to apply it over the current version, or "
        "keep theirs.",
        "您的修改尚未保存。下表列出不同之处：提案的当前内容（版本 {version}）与您填写的内容。"
        "表单保留了您填写的内容：保存即可覆盖当前版本，或保留对方的修改。",
    ),
    "tracking_conflict": (
        "Someone else changed this list meanwhile; your rows are not saved yet. Now it holds the items "
        "below. Save again to replace them with your rows, or keep theirs.",
        "在此期间他人修改了此列表；您的内容尚未保存。当前内容如下。再次保存将以您的内容替换，或保留对方的修改。",
    ),
    "field": ("Field", "字段"),
    "now": ("Now", "当前"),
    "yours": ("Yours", "您的"),
    "take_theirs": ("Keep theirs: discard my changes and reload", "保留对方的修改：放弃我的修改并重新加载"),
    "save_over": ("Save mine over the current version", "以我的内容覆盖当前版本"),
    "save_draft": ("Save the draft", "保存草稿"),
    "cancel": ("Cancel", "取消"),
    "yes": ("Yes", "是"),
    "no": ("No", "否"),
    "f_title": ("Title", "标题"),
    "f_city_ids": ("Member cities", "成员城市"),
    "f_lead_city_id": ("Lead city", "牵头城市"),
    "f_themes": ("Cooperation themes", "合作主题"),
    "f_objectives": ("Objectives", "目标"),
    "f_activities": ("Activities", "活动"),
    "f_budget": ("Budget", "预算"),
    "f_budget_amount": ("Budget amount", "预算金额"),
    "f_budget_currency": ("Budget currency", "预算币种"),
    "f_budget_public": ("Show the budget in the open data", "在开放数据中公开预算"),
    "f_start_date": ("Start date", "开始日期"),
    "f_end_date": ("End date", "结束日期"),
    "f_milestones": ("Milestones", "里程碑"),
    "f_kpis": ("KPIs", "关键绩效指标"),
    "f_documents": ("Documents and evidence", "文件与证明材料"),
    "members_hint": (
        "Two to {n} cities, one of them yours. Find a city to add it; untick one below to leave it out.",
        "2 至 {n} 个城市，其中一个须为您的城市。搜索城市即可添加；在下方取消勾选即可移除。",
    ),
    "find_city": ("Find a city to add", "查找要添加的城市"),
    "add_member": ("Add {name}", "添加{name}"),
    "no_cities_found": ("No city found.", "未找到城市。"),
    "first_member": ("The first member", "第一个成员城市"),
    "one_per_line": ("One per line.", "每行一项。"),
    "activities_hint": (
        "One per line: a title, then “|” and a description if you like.",
        "每行一项：标题，可在“|”后加说明。",
    ),
    "amount": ("Amount", "金额"),
    "currency": ("Currency (ISO 4217, e.g. CNY)", "币种（ISO 4217，如 CNY）"),
    "unconfirmed": (
        "Not yet: every member city confirms first. Waiting for {cities}.",
        "尚不可以：所有成员城市须先确认加入。仍在等待：{cities}。",
    ),
    "earlier": ("{n} earlier entries are not shown.", "另有 {n} 条较早的记录未显示。"),
    "spreadsheet": ("Spreadsheet (XLSX)", "电子表格（XLSX）"),
    "not_editable": ("This proposal cannot be edited now, or not by you.", "此提案当前不可编辑，或您无权编辑。"),
    "remove": ("Remove", "删除"),
    "new_row": ("New", "新增"),
    "stale_no_activity": ("No activity for a while", "长时间无进展"),
    "stale_overdue_milestone": ("A milestone is overdue", "有逾期的里程碑"),
    "stale_short": ("Stale", "停滞"),
    "lead": ("Lead", "牵头"),
    "confirmed": ("Confirmed", "已确认"),
    "awaiting_confirmation": ("Not confirmed yet", "尚未确认"),
    "plan": ("The plan", "计划"),
    "public": ("public", "公开"),
    "not_public": ("not public", "不公开"),
    "dates": ("Dates", "日期"),
    "coordinator": ("Coordinator", "协调员"),
    "coordinator_id": ("Coordinator's user ID", "协调员用户 ID"),
    "assign": ("Assign a coordinator", "指派协调员"),
    "me": ("Me", "我自己"),
    "you": ("you", "您"),
    "documents": ("Documents and evidence", "文件与证明材料"),
    "due": ("Due", "截止日期"),
    "done": ("Done", "已完成"),
    "target": ("Target", "目标值"),
    "actual": ("Actual", "实际值"),
    "unit": ("Unit", "单位"),
    "url": ("Address (URL)", "网址（URL）"),
    "overdue": ("Overdue milestone", "逾期里程碑"),
    "private_note": ("Private reviewer note", "审核人内部备注"),
    "private_hint": ("Private reviewer note (only coordinators see it)", "审核人内部备注（仅协调员可见）"),
    "reply": ("Reply", "回复"),
    "send": ("Send", "发送"),
    "new_comment": ("New comment", "新评论"),
    "filters": ("Filters", "筛选"),
    "member_city_id": ("Member city ID", "成员城市 ID"),
    "export": ("Export the proposals shown", "导出所示提案"),
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
    # Cities, rounds and open data (cities_pages.py)
    "new_city": ("New city", "新建城市"),
    "new_city_lead": (
        "Register a city: its cooperation themes can be filled in on its page afterwards.",
        "登记一个城市：合作主题可稍后在城市页面填写。",
    ),
    "save_as_draft": ("Save as a draft (not yet offered for matching)", "保存为草稿（暂不参与配对）"),
    "create_city": ("Create the city", "创建城市"),
    "do_verify": ("Verify", "核实"),
    "do_publish": ("Publish", "发布"),
    "do_retire": ("Retire", "停用"),
    "history": ("Change history", "修改记录"),
    "history_lead": (
        "{total} changes, newest first. Contacts are never shown here.",
        "共 {total} 项修改，最新在前。此处从不显示联系方式。",
    ),
    "when": ("When", "时间"),
    "change": ("Change", "修改"),
    "by": ("By", "操作人"),
    "fields_changed": ("Fields: before → after", "字段：修改前 → 修改后"),
    "pages": ("Pages", "分页"),
    "alternate_names": ("Other names", "其他名称"),
    "admin_region": ("Region", "所属地区"),
    "geonames_id": ("GeoNames id", "GeoNames 编号"),
    "preferred_countries": ("Preferred partner countries", "优先合作国家"),
    "excluded_countries": ("Excluded countries", "排除的国家"),
    "demo": ("Demo data", "演示数据"),
    "decisions": ("Decisions", "决定"),
    "pair_status": ("Status of the pair", "配对状态"),
    "city": ("City", "城市"),
    "decision": ("Decision", "决定"),
    "no_decision": ("Not decided yet", "尚未决定"),
    "countries": ("Countries", "国家"),
    "round_lead": (
        "Choose the cities by country, by corridor or both (none chosen: every published city), then run the round: "
        "it pairs them for the highest total score. Review it, then publish it.",
        "按国家、走廊或两者选择城市（都不选则为所有已发布城市），然后运行：系统按总分最高进行配对。审核后再发布。",
    ),
    "round_capacity": ("New partners per city at most", "每个城市最多新增伙伴数"),
    "countries_hint": ("Ctrl or ⌘ and click to choose several", "按住 Ctrl 或 ⌘ 点击可多选"),
    "round_run_on": ("Run on", "运行日期"),
    "past_rounds": ("Rounds", "历次轮次"),
    "round": ("Round of", "轮次："),
    "cities_chosen": ("Cities chosen", "所选城市"),
    "all_published": ("All published cities", "所有已发布城市"),
    "published": ("Published", "已发布"),
    "not_published": ("Not published", "未发布"),
    "no_rounds": ("No rounds yet.", "暂无轮次。"),
    "round_published": (
        "The round is published: the officials of its cities can now see it.",
        "该轮次已发布，相关城市的官员现在可以查看。",
    ),
    "method": ("Method", "方法"),
    "weights_version": ("weights", "权重版本"),
    "publish_lead": (
        "Publishing makes these pairs the programme's and shows the round to the officials of every city. "
        "It cannot be undone.",
        "发布后，这些配对即成为项目的正式配对，所有城市的官员均可查看本轮。发布后不能撤销。",
    ),
    "publish_round": ("Publish this round", "发布本轮"),
    "pair": ("Pair", "配对"),
    "open_data": ("Open data", "开放数据"),
    "open_pilot_zones": ("Pilot zones (open data)", "试验区（开放数据）"),
    "open_pilot_zones_lead": (
        "Approved, active and completed pilot zones, readable by anyone: no contacts, no comments; budgets only where "
        "made public.",
        "已批准、实施中和已完成的试验区，任何人均可查阅：不含联系方式和评论；预算仅在公开时显示。",
    ),
    "zone_title": ("Title", "名称"),
    "zone_budget": ("Budget", "预算"),
    "open_cities": ("City directory (open data)", "城市名录（开放数据）"),
    "open_cities_lead": (
        "Published cities, readable by anyone: each city's name and country, and the fields the city chose to make "
        "public.",
        "已发布的城市，任何人均可查阅：城市名称和国家，以及各城市自愿公开的字段。",
    ),
    "nothing_public": ("This city has made no other fields public.", "该城市未公开其他字段。"),
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
    # Identity's values (accounts.py): roles, notification kinds and how each is delivered, mail languages.
    "role": {
        "admin": ("Administrator", "管理员"),
        "coordinator": ("Coordinator", "协调员"),
        "official": ("City official", "城市官员"),
        "observer": ("Observer", "观察员"),
    },
    "notification": {
        "action_needed": ("Proposals that need my action", "待我处理的提案"),
        "match_decisions": ("Decisions on my cities' matches", "对我城市配对的决定"),
        "proposal_transitions": ("A proposal's changes of status", "提案的状态变化"),
        "stale_flags": ("Profiles flagged as stale", "被标记为过期的资料"),
        "partner_suggestions": ("New partner suggestions", "新的合作城市推荐"),
        # An unsubscribe link in a digest turns off every kind the user gets in digests.
        "digest": ("The daily digest", "每日摘要"),
    },
    "delivery": {
        "immediate": ("At once", "立即"),
        "digest": ("Daily digest", "每日摘要"),
        "off": ("Off", "关闭"),
    },
    # Each language in its own name, whatever the page's.
    "mail_language": {
        "en": ("English", "English"),
        "zh": ("中文", "中文"),
        "ru": ("Русский", "Русский"),
        "ar": ("العربية", "العربية"),
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
    # What happened to a proposal, as its timeline says (the pilot-zones API's `action`).
    "action": {
        "created": ("Drafted", "已起草"),
        "created_from_match": ("Drafted from an accepted match", "根据已接受的配对起草"),
        "edited": ("Edited", "已编辑"),
        "confirmed": ("Membership confirmed", "已确认加入"),
        "assigned": ("Coordinator assigned", "已指派协调员"),
        "transition": ("Status changed", "状态已变更"),
        "commented": ("Commented", "已评论"),
        "stale_flagged": ("Flagged as stale", "被标记为停滞"),
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
    "unmatched_reason": {
        "at_capacity": ("No room for another partner", "已无结对容量"),
        "no_allowed_partner": (
            "No allowed partner in the round at the minimum score",
            "本轮中没有达到最低得分的可选伙伴",
        ),
        "paired_elsewhere": (
            "Its candidates were paired with others for a higher total",
            "其候选伙伴已与其他城市配对，总分更高",
        ),
    },
    "city_change": {
        "created": ("Created", "创建"),
        "updated": ("Updated", "更新"),
        "imported": ("Imported", "导入"),
        "partners_imported": ("Partners imported", "导入合作伙伴"),
        "verify": ("Verified", "核实"),
        "publish": ("Published", "发布"),
        "retire": ("Retired", "停用"),
        "confirm": ("Confirmed as accurate", "确认信息准确"),
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
