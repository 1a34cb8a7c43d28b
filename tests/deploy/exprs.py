"""The PromQL of the dashboards and alerts, and the metric catalogue they must keep to.

Shared by check_dashboards.py (static checks) and
tests/integration/query_dashboards.py (queries against a live Prometheus). Standard library only.
"""
import json
import pathlib
import re

DATASOURCE_UID = "moeflow-prometheus"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Metrics Prometheus makes itself (per target), allowed beside the catalogue's.
PROMETHEUS_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

# An alert's expr: `<signal> <comparison> <threshold>` (deploy/prometheus/alerts.yml says why).
ALERT_EXPR = re.compile(r"^(?P<signal>.*\S)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<threshold>-?[0-9.]+(?:e-?[0-9]+)?)$")


def catalogue(metrics_md: pathlib.Path):
    """{name: type} of every metric in docs/metrics.md: the first backticked cell of its tables'
    rows, and any other backticked moeflow_* name in its text (type "" when not in a table)."""
    text = metrics_md.read_text()
    names = {n: "" for n in re.findall(r"`(moeflow_[a-z0-9_]+)[`{]", text)}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`(moeflow_[a-z0-9_]+)`\s*\|\s*([^|]*)\|(.*)$", line)
        if not m:
            continue
        cells = [m.group(2)] + m.group(3).split("|")
        kind = next((k for k in ("histogram", "counter", "gauge") for c in cells if c.strip().startswith(k)), "")
        names[m.group(1)] = kind
    return names


def panels(dashboard):
    """Every panel, rows' nested panels included."""
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def panel_targets(dashboard):
    """(panel title, target) for every query of every panel."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            yield p.get("title", "?"), p, t


def load_dashboards(folder: pathlib.Path):
    """[(path, parsed JSON or the json error)] for dashboards/*.json, sorted."""
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append((path, json.loads(path.read_text())))
        except json.JSONDecodeError as e:
            out.append((path, e))
    return out


def alert_rules(alerts_yml: pathlib.Path):
    """[(alert name, expr)] read line by line (exprs are one line each; no YAML library needed)."""
    rules, name = [], None
    for line in alerts_yml.read_text().splitlines():
        m = re.match(r"^\s*-?\s*alert:\s*(\S+)\s*$", line)
        if m:
            name = m.group(1)
            continue
        m = re.match(r"^\s*expr:\s*(.+?)\s*$", line)
        if m and name:
            rules.append((name, m.group(1).strip("'\"") if m.group(1)[0] in "'\"" else m.group(1)))
            name = None
    return rules


def strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str):
    """Metric names in a PromQL expression: identifiers before a selector or range, and every
    moeflow_* identifier (label values in quotes are ignored)."""
    text = strip_strings(expr)
    names = set(re.findall(r"\bmoeflow_[a-zA-Z0-9_]+\b", text))
    for m in re.finditer(r"\b([a-zA-Z_][a-zA-Z0-9_]*)\s*[\{\[]", text):
        names.add(m.group(1))
    return names


def base_name(name: str, known):
    """The catalogue name of `name` (histogram series lose _bucket/_sum/_count), or None."""
    if name in known:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and known.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return None


def fill(expr: str, node: str = ".*", layer: str = "0") -> str:
    """A dashboard expr with Grafana's variables filled in, ready for Prometheus."""
    for var, value in (("$__rate_interval", "10s"), ("$__interval", "5s"), ("$__range", "5m"),
                       ("${node}", node), ("$node", node), ("${layer}", layer), ("$layer", layer)):
        expr = expr.replace(var, value)
    return expr
