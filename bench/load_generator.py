#!/usr/bin/env python3
"""Load generator for moeflow's OpenAI-compatible API: requests/s, time to first token (TTFT) and
inter-token latency (ITL), p50 and p99, at several concurrency levels, plus total generated
tokens/s (batched decoding should make 32 clients produce more tokens/s than 1).

    python3 bench/load_generator.py --url http://127.0.0.1:8000 --model demo \\
        --concurrency 1,8,32 --requests 64 --max-tokens 64

Each client streams completions (greedy, fixed prompts) back to back; every streamed chunk's
arrival time is recorded. Needs httpx (the API test venv has it: ~/.cache/moeflow/venv).
"""
import argparse
import json
import statistics
import threading
import time

import httpx

PROMPTS = ["The meaning of life is", "A man walks into a bar", "Q: What is the best way to",
           "Never trust", "In the beginning", "Fortune favours"]


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def one_request(client, url, model, prompt, max_tokens):
    start = time.perf_counter()
    arrivals = []
    with client.stream("POST", url + "/v1/completions", json={
            "model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}, timeout=600) as r:
        r.raise_for_status()
        tokens = 0
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                arrivals.append(time.perf_counter())
    end = time.perf_counter()
    ttft = arrivals[0] - start if arrivals else float("nan")
    itl = [b - a for a, b in zip(arrivals, arrivals[1:])]
    return ttft, itl, tokens, end - start


def run_level(url, model, concurrency, requests, max_tokens):
    results, lock = [], threading.Lock()
    counter = iter(range(requests))

    def worker():
        with httpx.Client() as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                r = one_request(client, url, model, PROMPTS[i % len(PROMPTS)], max_tokens)
                with lock:
                    results.append(r)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ttfts = [r[0] for r in results if r[0] == r[0]]  # requests whose tokens decoded to no text have none
    itls = [x for r in results for x in r[1]]
    tokens = sum(r[2] for r in results)
    return {
        "concurrency": concurrency, "requests": len(results), "requests_per_s": len(results) / wall,
        "tokens_per_s": tokens / wall, "ttft_p50_ms": 1e3 * percentile(ttfts, 0.5),
        "ttft_p99_ms": 1e3 * percentile(ttfts, 0.99), "itl_p50_ms": 1e3 * percentile(itls, 0.5),
        "itl_p99_ms": 1e3 * percentile(itls, 0.99),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--model", default="demo")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    p.add_argument("--max-tokens", type=int, default=64)
    a = p.parse_args()
    rows = [run_level(a.url, a.model, int(c), a.requests, a.max_tokens) for c in a.concurrency.split(",")]
    print("| clients | requests | requests/s | generated tokens/s | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['concurrency']} | {r['requests']} | {r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} | "
              f"{r['ttft_p50_ms']:.1f} ms | {r['ttft_p99_ms']:.1f} ms | {r['itl_p50_ms']:.2f} ms | {r['itl_p99_ms']:.2f} ms |")
    if len(rows) > 1:
        print(f"\ntokens/s at {rows[-1]['concurrency']} clients / at {rows[0]['concurrency']}: "
              f"{rows[-1]['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
