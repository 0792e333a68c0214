"""deploy/observability agrees with the code: it scrapes every service, and asks only for metrics they export.

The metrics are read from the services themselves: each app is built (`create_app` with default settings) in
a child process, and the prometheus_client registry it filled is listed with each metric's label names. Every
expression in the alerting rules and in the Grafana dashboard is taken apart (a small PromQL tokenizer) and
each metric, label and route it names is checked against that. Where `promtool` is installed (Debian's
`prometheus` package; it is not on PyPI) the rules and the configuration are checked by it too, the
dashboard's queries are parsed by it, and the rules' unit tests (alerts.test.yml) are run.
"""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from citypair_cli import stack

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
PROMETHEUS = OBSERVABILITY / "prometheus.yml"
ALERTS = OBSERVABILITY / "alerts.yml"
ALERT_TESTS = OBSERVABILITY / "alerts.test.yml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICE_NAMES = [spec.name for spec in stack.SERVICES]
APP_PORT = 8000  # where each service listens in its container (deploy/Dockerfile)

# What Prometheus records itself for every target, and the labels it gives every series it scrapes.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
TARGET_LABELS = {"job", "instance"}

_EXPORTED = r"""
import importlib, json
from fastapi.routing import iter_route_contexts
from prometheus_client import REGISTRY
from citypair_cli.stack import SERVICES

SUFFIXES = {
    "counter": ["_total", "_created"],
    "gauge": [""],
    "histogram": ["_bucket", "_count", "_sum", "_created"],
    "gaugehistogram": ["_bucket", "_gcount", "_gsum"],
    "summary": ["", "_count", "_sum", "_created"],
    "info": ["_info"],
}
routes = {}
for spec in SERVICES:
    settings = importlib.import_module(f"{spec.package}.config").Settings(environment="development")
    app = importlib.import_module(f"{spec.package}.main").create_app(settings)
    # The `route` label's values: each route's path template, the included routers' routes among them.
    routes[spec.name] = sorted({route.path for route in iter_route_contexts(app.router.routes)})
metrics = {}
for collector in list(REGISTRY._collector_to_names):  # the registry's collectors (no public listing)
    for family in collector.collect():
        labels = set(getattr(collector, "_labelnames", ()))
        extra = {"histogram": {"le"}, "gaugehistogram": {"le"}, "summary": {"quantile"}}.get(family.type, set())
        for suffix in SUFFIXES.get(family.type, [""]):
            own = extra if suffix in ("", "_bucket") else set()
            metrics.setdefault(family.name + suffix, set()).update(labels | own)
        for sample in family.samples:
            metrics.setdefault(sample.name, set()).update(sample.labels)
print(json.dumps({"metrics": {name: sorted(labels) for name, labels in metrics.items()}, "routes": routes}))
"""


@functools.cache
def exported() -> dict:
    """{"metrics": {sample name: [label names]}, "routes": {service: [route paths]}}, from the apps themselves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPAIR_")}
    result = subprocess.run(
        [sys.executable, "-c", _EXPORTED], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def exported_metrics() -> dict[str, set[str]]:
    return {name: set(labels) for name, labels in exported()["metrics"].items()}


# --- PromQL, taken apart ---------------------------------------------------------------------------------

TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<range>\[[^\]]*\])
    |(?P<variable>\$\{?\w+\}?)
    |(?P<duration>(?:\d+(?:ms|[smhdwy]))+\b)
    |(?P<number>(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)
    |(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
    |(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>{}(),])
    |(?P<space>\s+)""",
    re.X,
)
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk"}
AGGREGATIONS |= {"quantile", "limitk", "limit_ratio"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}


def tokens(expr: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(expr):
        match = TOKEN.match(expr, position)
        assert match, f"cannot read {expr[position:]!r} in {expr!r}"
        if match.lastgroup != "space":
            found.append((match.lastgroup, match.group()))
        position = match.end()
    return found


def parse(expr: str) -> tuple[list[tuple[str, list[tuple[str, str, str]]]], set[str]]:
    """The selectors of a PromQL expression, each (metric, [(label, operator, value)]), and the label names
    its grouping and matching clauses (by, without, on, ignoring, group_left/right) name."""
    items = [(kind, text) for kind, text in tokens(expr) if kind != "variable"]  # Grafana's $job, $__interval
    selectors, grouping, i = [], set(), 0
    while i < len(items):
        kind, text = items[i]
        following = items[i + 1][1] if i + 1 < len(items) else None
        if kind == "name" and text.lower() in GROUPING:
            i += 1
            if following == "(":
                while items[i][1] != ")":
                    if items[i][0] == "name":
                        grouping.add(items[i][1])
                    i += 1
            continue
        if kind == "name" and (text.lower() in KEYWORDS | AGGREGATIONS or following == "("):
            i += 1  # a keyword, an aggregation (its `by` may come first), or a function
            continue
        if (kind == "name" and following == "{") or text == "{":
            metric = text if kind == "name" else None
            i += 2 if kind == "name" else 1
            matchers = []
            while items[i][1] != "}":
                if items[i][1] == ",":
                    i += 1
                    continue
                (_, label), (_, operator), (_, value) = items[i : i + 3]
                matchers.append((label, operator, value[1:-1]))
                i += 3
            selectors.append((metric, matchers))
        elif kind == "name":
            selectors.append((text, []))
        i += 1
    named = []
    for metric, matchers in selectors:
        names = [value for label, operator, value in matchers if label == "__name__" and operator == "="]
        named.append((metric or (names[0] if names else None), [m for m in matchers if m[0] != "__name__"]))
    return named, grouping


def test_the_promql_reader_finds_metrics_labels_and_groupings():
    selectors, grouping = parse(
        'sum by (job, le) (rate(http_request_duration_seconds_bucket{job=~"$job", route!~"/a|/b"}[$__rate_interval]))'
        ' / on(job) group_left max(up offset 5m) > bool 0.5 or vector(0) and absent({__name__="x", a="b"})'
    )
    assert selectors == [
        ("http_request_duration_seconds_bucket", [("job", "=~", "$job"), ("route", "!~", "/a|/b")]),
        ("up", []),
        ("x", [("a", "=", "b")]),
    ]
    assert grouping == {"job", "le"}


# --- what the files ask for ------------------------------------------------------------------------------


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> list[dict]:
    panels = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels += panel.get("panels", [])  # a collapsed row keeps its panels inside it
    return panels


def dashboard_expressions() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every alert and every dashboard query."""
    return [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()] + [
        (f"panel {title!r}", expr) for title, expr in dashboard_expressions()
    ]


def metrics_in(expr: str) -> set[str]:
    return {metric for metric, _ in parse(expr)[0]}


def job_values(value: str, operator: str) -> set[str]:
    if operator == "=~":
        return set(value.split("|")) if value != "$job" else set(SERVICE_NAMES)
    return {value}


# --- the metrics exist ------------------------------------------------------------------------------------


def test_the_services_export_the_metrics_the_files_rely_on():
    names = set(exported_metrics())
    for expected in ("http_requests_total", "outbox_oldest_unsent_age_seconds", "consumer_lag", "dead_letters_total"):
        assert expected in names, f"the services no longer export {expected}: {sorted(names)}"


@pytest.mark.parametrize(("where", "expr"), expressions(), ids=[where for where, _ in expressions()])
def test_every_expression_asks_for_exported_metrics_and_labels(where, expr):
    metrics = exported_metrics()
    selectors, grouping = parse(expr)
    assert selectors, f"{where}: no metric in {expr!r}"
    known_labels = set(TARGET_LABELS)
    for metric, matchers in selectors:
        assert metric in metrics or metric in SCRAPE_SERIES, f"{where}: no service exports {metric!r}"
        labels = metrics.get(metric, set()) | TARGET_LABELS
        known_labels |= labels
        for label, operator, value in matchers:
            assert label in labels, f"{where}: {metric} has no label {label!r} (it has {sorted(labels)})"
            if label == "job":
                unknown = job_values(value, operator) - set(SERVICE_NAMES)
                assert not unknown, f"{where}: no scrape job {unknown} (prometheus.yml has one per service)"
    assert grouping <= known_labels, f"{where}: groups by {grouping - known_labels}, which its metrics do not carry"


@pytest.mark.parametrize(("where", "expr"), expressions(), ids=[where for where, _ in expressions()])
def test_every_route_named_is_one_the_service_serves(where, expr):
    routes = exported()["routes"]
    for _, matchers in parse(expr)[0]:
        jobs = {v for label, op, value in matchers if label == "job" for v in job_values(value, op)} or set(routes)
        for label, operator, value in matchers:
            if label == "route" and operator == "=":
                assert all(value in routes[job] for job in jobs), f"{where}: route {value!r} is not served by {jobs}"
            elif label == "route" and operator in ("=~", "!~"):
                for path in value.split("|"):
                    assert all(path in routes[job] for job in jobs), f"{where}: route {path!r} not served by {jobs}"


# --- prometheus.yml ---------------------------------------------------------------------------------------


def test_prometheus_scrapes_every_replica_of_every_service_where_it_listens():
    config = yaml.safe_load(PROMETHEUS.read_text())
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICE_NAMES), "one scrape job per service, named after it (the alerts use job=...)"
    for name, job in jobs.items():
        assert job.get("metrics_path", "/metrics") == "/metrics", name
        # Each replica a target of its own: compose's DNS answers the service's name with every replica's address.
        (lookup,) = job["dns_sd_configs"]
        assert lookup == {"names": [name], "type": "A", "port": APP_PORT}, name
        assert name in compose and compose[name]["environment"][f"CITYPAIR_{name.upper()}_PORT"] == str(APP_PORT)
    assert config["rule_files"] == [ALERTS.name]


# --- alerts.yml and the dashboard ---------------------------------------------------------------------------

# What must be watched: a metric each, or the series and labels that make it (issue 15).
WATCHED = {
    "a replica or a whole service down": "up",
    "events not published (outbox)": "outbox_oldest_unsent_age_seconds",
    "consumers falling behind": "consumer_lag",
    "dead letters": "dead_letters_total",
    "server errors": "http_requests_total",
}


def test_the_alerts_watch_what_must_be_watched_and_say_what_is_wrong():
    rules = alert_rules()
    used = set().union(*(metrics_in(rule["expr"]) for rule in rules))
    for what, metric in WATCHED.items():
        assert metric in used, f"no alert on {what} ({metric})"
    five_xx = [r for r in rules if 'status=~"5.."' in r["expr"]]
    signin = [r for r in rules if "/api/v1/auth/token" in r["expr"] and "401" in r["expr"]]
    assert five_xx and signin, "alerts on the 5xx ratio and on sign-in failures"
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_dashboard_shows_what_the_alerts_watch():
    on_dashboard = set().union(*(metrics_in(expr) for _, expr in dashboard_expressions()))
    alerted = set().union(*(metrics_in(rule["expr"]) for rule in alert_rules()))
    assert alerted <= on_dashboard, f"no panel for {alerted - on_dashboard}"


def test_the_dashboard_is_importable():
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert set(variables["job"]["query"].split(",")) == set(SERVICE_NAMES)
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
            refs = [target["refId"] for target in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


# --- promtool ------------------------------------------------------------------------------------------------


def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.skip(
            "promtool is not installed (it is not on PyPI: Debian's `prometheus` package has it, or set PROMTOOL); "
            "the metric names and labels are still checked above"
        )
    return found


def run_promtool(*args: str | Path, cwd: Path = OBSERVABILITY) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_accepts_the_rules_and_the_configuration():
    result = run_promtool("check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_promtool("check", "config", PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_parses_every_dashboard_query(tmp_path):
    """Each query as a recording rule, the dashboard's variables given values, for promtool to parse."""
    rules = [
        {"record": f"dashboard:query_{n}", "expr": expr.replace("$__rate_interval", "1m").replace("$job", ".*")}
        for n, (_, expr) in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_fire_when_they_should():
    """promtool's unit tests of the rules (alerts.test.yml): each alert on made-up series, fired and not."""
    tested = {
        alert["alertname"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for alert in case.get("alert_rule_test", [])
    }
    assert tested == {rule["alert"] for rule in alert_rules()}, "a unit test for each alert"
    result = run_promtool("test", "rules", ALERT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
