#!/usr/bin/env python3
"""Queries a live Prometheus with every dashboard panel's expressions and every alert's signal
expression, and names each one that returns no data (an empty result) or an error.

Grafana's variables are filled in: $node with ".*" (the dashboards match it with =~), $layer with
"0", $__rate_interval with "10s", $__interval with "5s", $__range with "5m".

Usage: query_dashboards.py PROMETHEUS_URL SOURCE_DIR. Exit 1 when any expression has no data.
"""
import json
import pathlib
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "deploy"))
import exprs  # noqa: E402


def query(url: str, expr: str):
    """(number of series, error or None)."""
    full = url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(full, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        try:
            body = json.load(e)
        except ValueError:
            return 0, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)
    if body.get("status") != "success":
        return 0, body.get("error", "query failed")
    result = body["data"]["result"]
    return (len(result) if isinstance(result, list) else 1), None


def main(url: str, src: pathlib.Path) -> int:
    checks = []  # (where, expr as written, expr sent)
    for path, d in exprs.load_dashboards(src / "dashboards"):
        if isinstance(d, Exception):
            print(f"{path.name}: invalid JSON: {d}")
            return 1
        for title, _, t in exprs.panel_targets(d):
            checks.append((f"{path.name} / {title} / {t.get('refId')}", t["expr"], exprs.fill(t["expr"])))
    for name, expr in exprs.alert_rules(src / "deploy/prometheus/alerts.yml"):
        m = exprs.ALERT_EXPR.match(expr)
        signal = m.group("signal") if m else expr
        checks.append((f"alerts.yml / {name} (signal)", signal, signal))

    empty = []
    for where, written, sent in checks:
        series, error = query(url, sent)
        if error or not series:
            empty.append((where, sent, error))
    for where, sent, error in empty:
        print(f"NO DATA: {where}: {sent}" + (f"  [error: {error}]" if error else ""))
    print(f"{len(checks) - len(empty)} of {len(checks)} expressions returned data")
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2]).resolve()))
