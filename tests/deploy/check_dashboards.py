#!/usr/bin/env python3
"""Static checks of dashboards/*.json and deploy/prometheus/alerts.yml against docs/metrics.md.

Every dashboard is valid JSON with schemaVersion >= 39 and a unique uid; every panel and query
uses the datasource uid moeflow-prometheus; every metric name in every query (and template
variable) is in docs/metrics.md (or is Prometheus' own `up`); rate() uses $__rate_interval; every
alert expr is `<signal> <comparison> <threshold>` over catalogue metrics; the Grafana provisioning
names that datasource and sets the variables it reads in grafana.env.

Usage: check_dashboards.py SOURCE_DIR. Prints every problem; exit 1 when there is one.
"""
import pathlib
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import exprs  # noqa: E402


def main(src: pathlib.Path) -> int:
    problems = []
    known = exprs.catalogue(src / "docs/metrics.md")
    if len(known) < 20:
        problems.append(f"docs/metrics.md: only {len(known)} metrics found; is the table format the same?")

    def check_expr(where, expr, grafana=True):
        for name in sorted(exprs.metric_names(expr)):
            if name in exprs.PROMETHEUS_METRICS or exprs.base_name(name, known):
                continue
            problems.append(f"{where}: metric {name} is not in docs/metrics.md")
        for fn, window in re.findall(r"\b(i?rate)\s*\([^()]*?\[([^\]]*)\]", exprs.strip_strings(expr)):
            if not grafana:
                break
            if window != "$__rate_interval":
                problems.append(f"{where}: {fn}(...[{window}]) should use [$__rate_interval]")

    def check_datasource(where, ds):
        uid = ds.get("uid") if isinstance(ds, dict) else ds
        if uid != exprs.DATASOURCE_UID:
            problems.append(f"{where}: datasource {ds!r}, want uid {exprs.DATASOURCE_UID!r}")

    dashboards = exprs.load_dashboards(src / "dashboards")
    if not dashboards:
        problems.append("dashboards/: no *.json")
    uids = {}
    for path, d in dashboards:
        rel = path.relative_to(src)
        if isinstance(d, Exception):
            problems.append(f"{rel}: invalid JSON: {d}")
            continue
        if d.get("schemaVersion", 0) < 39:
            problems.append(f"{rel}: schemaVersion {d.get('schemaVersion')} < 39")
        uid = d.get("uid")
        if not uid or uid in uids:
            problems.append(f"{rel}: uid {uid!r} missing or also in {uids.get(uid)}")
        uids[uid] = rel
        ids = [p.get("id") for p in exprs.panels(d)]
        if len(ids) != len(set(ids)):
            problems.append(f"{rel}: panel ids are not unique")
        for v in d.get("templating", {}).get("list", []):
            where = f"{rel}: variable ${v.get('name')}"
            if v.get("type") == "query":
                check_datasource(where, v.get("datasource"))
                q = v.get("query")
                check_expr(where, q.get("query", "") if isinstance(q, dict) else q or "")
        queries = 0
        for title, panel, t in exprs.panel_targets(d):
            where = f"{rel}: panel {title!r} {t.get('refId')}"
            check_datasource(where + " (panel)", panel.get("datasource"))
            check_datasource(where, t.get("datasource"))
            if not t.get("expr"):
                problems.append(f"{where}: no expr")
                continue
            queries += 1
            check_expr(where, t["expr"])
        if not queries:
            problems.append(f"{rel}: no queries")

    rules = exprs.alert_rules(src / "deploy/prometheus/alerts.yml")
    if len(rules) < 5:
        problems.append(f"deploy/prometheus/alerts.yml: {len(rules)} rules read, expected at least 5")
    for name, expr in rules:
        where = f"deploy/prometheus/alerts.yml: {name}"
        if not exprs.ALERT_EXPR.match(expr):
            problems.append(f"{where}: expr {expr!r} is not `<signal> <comparison> <threshold>`")
        check_expr(where, expr, grafana=False)

    datasource = (src / "deploy/grafana/provisioning/datasources/moeflow.yml").read_text()
    if f"uid: {exprs.DATASOURCE_UID}" not in datasource:
        problems.append(f"deploy/grafana/provisioning/datasources/moeflow.yml: no uid {exprs.DATASOURCE_UID}")
    env = (src / "deploy/grafana/grafana.env").read_text()
    for f in ("datasources/moeflow.yml", "dashboards/moeflow.yml"):
        text = (src / "deploy/grafana/provisioning" / f).read_text()
        for var in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", "\n".join(
                l for l in text.splitlines() if not l.lstrip().startswith("#"))):
            if not re.search(rf"^{var}=", env, re.M):
                problems.append(f"deploy/grafana/provisioning/{f}: ${var} has no default in deploy/grafana/grafana.env")

    for p in problems:
        print(p)
    n_queries = sum(1 for _, d in dashboards if not isinstance(d, Exception) for _ in exprs.panel_targets(d))
    print(f"{len(dashboards)} dashboards, {n_queries} queries, {len(rules)} alerts, "
          f"{len(known)} catalogue metrics: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()))
