#!/usr/bin/env python3
"""Writes a copy of configs/three-node.toml for a test on loopback: another model, free ports,
faster heartbeats, 16-token specialisation windows. Every line it replaces must be in the
example once, so that a change there shows up here rather than as a silent mismatch.

Usage: three_node_graph.py SOURCE_DIR MODEL_DIR OUT.toml
Prints the ports it chose as NAME=PORT lines (API, METRICS, ROUTER_CONTROL, ...), for eval.
"""
import socket
import sys

NAMES = ["API", "METRICS", "ROUTER_CONTROL", "ROUTER_DATA", "A_CONTROL", "A_DATA", "A_METRICS",
         "B_CONTROL", "B_DATA", "B_METRICS", "PROMETHEUS"]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]  # all held at once, so that they differ
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main(src, model, out):
    p = dict(zip(NAMES, free_ports(len(NAMES))))
    text = open(f"{src}/configs/three-node.toml").read()
    placed = []
    for old, new in [
        ('path = "../tests/golden/mixtral"', f'path = "{model}"'),
        ("port = 8000", f"port = {p['API']}"),
        ("port = 9100", f"port = {p['METRICS']}\nwindow_tokens = 16"),
        ("heartbeat_ms = 500", "heartbeat_ms = 100"),
        ("peer_down_ms = 2000", "peer_down_ms = 1000"),
        ("control_port = 5550", f"control_port = {p['ROUTER_CONTROL']}"),
        ("data_port = 5551", f"data_port = {p['ROUTER_DATA']}"),
        ("control_port = 5560", f"control_port = {p['A_CONTROL']}"),
        ("data_port = 5561", f"data_port = {p['A_DATA']}"),
        ("metrics_port = 9101", f"metrics_port = {p['A_METRICS']}"),
        ("control_port = 5570", f"control_port = {p['B_CONTROL']}"),
        ("data_port = 5571", f"data_port = {p['B_DATA']}"),
        ("metrics_port = 9102", f"metrics_port = {p['B_METRICS']}"),
    ]:
        if text.count(old) != 1:
            sys.exit(f"configs/three-node.toml: expected one '{old}', found {text.count(old)}")
        # A placeholder first: a free port chosen for one line may equal a later line's old port.
        marker = f"@@{len(placed)}@@"
        text = text.replace(old, marker)
        placed.append((marker, new))
    for marker, new in placed:
        text = text.replace(marker, new)
    with open(out, "w") as f:
        f.write(text)
    for name, port in p.items():
        print(f"PORT_{name}={port}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
