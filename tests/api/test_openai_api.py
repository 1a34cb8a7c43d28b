"""The OpenAI-compatible API as the official `openai` Python client sees it."""
import concurrent.futures
import pathlib
import shutil
import subprocess
import time

import httpx
import openai
import pytest

from conftest import MODEL_NAME, Server


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def test_models_health_ready(server, client):
    assert [m.id for m in client.models.list().data] == [MODEL_NAME]
    assert httpx.get(server.base_url + "/health").json() == {"status": "ok"}
    assert httpx.get(server.base_url + "/ready").json()["status"] == "ready"


def test_completion(client):
    r = client.completions.create(model=MODEL_NAME, prompt="The meaning of life is", max_tokens=12, temperature=0)
    choice = r.choices[0]
    assert choice.text.strip(), "no text generated"
    assert choice.finish_reason in ("length", "stop")
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    if choice.finish_reason == "length":
        assert r.usage.completion_tokens == 12


def test_chat(client):
    r = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "Tell me a fortune."}], max_tokens=16, temperature=0
    )
    assert r.choices[0].message.role == "assistant"
    assert isinstance(r.choices[0].message.content, str)
    assert r.usage.completion_tokens <= 16


@pytest.mark.parametrize("prompt", ["A man walks into a bar", "Q: What is the best way to", "Never"])
def test_streamed_completion_equals_non_streamed(client, prompt):
    whole = client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=24, temperature=0)
    parts = client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=24, temperature=0, stream=True)
    streamed = "".join(c.choices[0].text for c in parts if c.choices)
    assert streamed == whole.choices[0].text


def test_streamed_chat_equals_non_streamed(client):
    messages = [{"role": "user", "content": "What is love?"}]
    whole = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=24, temperature=0)
    stream = client.chat.completions.create(
        model=MODEL_NAME, messages=messages, max_tokens=24, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for c in stream:
        if c.usage:
            usage = c.usage
        for ch in c.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    assert text == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_stop_sequence_cuts_the_text(client):
    whole = client.completions.create(model=MODEL_NAME, prompt="The", max_tokens=30, temperature=0).choices[0].text
    assert len(whole) >= 6, whole
    stop = whole[len(whole) // 2 : len(whole) // 2 + 3]  # text the model is sure to write
    cut = client.completions.create(model=MODEL_NAME, prompt="The", max_tokens=30, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == whole[: whole.index(stop)]


def test_seeded_sampling_is_reproducible(client):
    kw = dict(model=MODEL_NAME, prompt="Once upon a time", max_tokens=20, temperature=1.0, top_p=0.9)
    a = client.completions.create(seed=5, **kw).choices[0].text
    b = client.completions.create(seed=5, **kw).choices[0].text
    assert a == b


def test_32_concurrent_clients_finish_with_correct_usage(client):
    single = client.completions.create(model=MODEL_NAME, prompt="Fortune favours", max_tokens=20, temperature=0)

    def one(i):
        return client.completions.create(model=MODEL_NAME, prompt="Fortune favours", max_tokens=20, temperature=0)

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(32)))
    for r in results:
        assert r.choices[0].text == single.choices[0].text  # batching does not change greedy output
        assert r.usage.prompt_tokens == single.usage.prompt_tokens
        assert r.usage.completion_tokens == single.usage.completion_tokens
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body
    return body["error"]


@pytest.mark.parametrize(
    "body, status, param",
    [
        ('{"model": "demo", "prompt": ', 400, None),  # malformed JSON
        ('["not", "an", "object"]', 400, None),
        ('{"model": "demo", "prompt": "x", "temperature": "hot"}', 400, "temperature"),
        ('{"model": "demo", "prompt": "x", "max_tokens": -3}', 400, "max_tokens"),
        ('{"model": "demo", "prompt": "x", "max_tokens": 100000}', 400, "prompt"),
        ('{"model": "demo", "prompt": 5}', 400, "prompt"),
        ('{"prompt": "x"}', 400, "model"),
        ('{"model": "gpt-17", "prompt": "x"}', 404, "model"),
        ('{"model": "demo", "prompt": "x", "n": 3}', 400, "n"),
    ],
)
def test_bad_completion_requests(server, body, status, param):
    r = httpx.post(server.base_url + "/v1/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = error_of(r)
    if param:
        assert err["param"] == param, err


def test_prompt_longer_than_the_context(server):
    r = httpx.post(server.base_url + "/v1/completions", json={"model": MODEL_NAME, "prompt": "word " * 2000, "max_tokens": 5})
    assert r.status_code == 400
    assert error_of(r)["code"] == "context_length_exceeded"


def test_bad_chat_requests(server):
    url = server.base_url + "/v1/chat/completions"
    r = httpx.post(url, json={"model": MODEL_NAME, "messages": []})
    assert r.status_code == 400 and error_of(r)["param"] == "messages"
    r = httpx.post(url, json={"model": MODEL_NAME, "messages": [{"role": "wizard", "content": "hi"}]})
    assert r.status_code == 400 and "role" in error_of(r)["param"]


def test_unknown_route(server):
    r = httpx.get(server.base_url + "/v1/engines")
    assert r.status_code == 404
    error_of(r)


def test_client_disconnect_cancels_and_server_keeps_serving(server, client):
    with httpx.stream("POST", server.base_url + "/v1/completions",
                      json={"model": MODEL_NAME, "prompt": "The", "max_tokens": 400, "temperature": 0,
                            "stream": True}) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i > 3:
                break  # hang up mid-stream
    r = client.completions.create(model=MODEL_NAME, prompt="The", max_tokens=5, temperature=0)
    assert r.usage.completion_tokens <= 5


def test_api_key_is_enforced():
    s = Server(api_key="sekrit")
    try:
        r = httpx.post(s.base_url + "/v1/completions", json={"model": MODEL_NAME, "prompt": "x", "max_tokens": 1})
        assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key"
        good = openai.OpenAI(base_url=s.base_url + "/v1", api_key="sekrit", max_retries=0)
        assert good.completions.create(model=MODEL_NAME, prompt="x", max_tokens=2).usage.completion_tokens <= 2
        assert httpx.get(s.base_url + "/health").status_code == 200  # probes need no key
    finally:
        s.stop()


def test_overload_is_answered_at_once_with_429_and_retry_after():
    s = Server(extra_toml="\n[scheduler]\nmax_running = 1\nmax_waiting = 1\n")
    try:
        def one(i):
            return httpx.post(s.base_url + "/v1/completions", timeout=60,
                              json={"model": MODEL_NAME, "prompt": "The", "max_tokens": 64, "temperature": 0})

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(one, range(12)))
        codes = [r.status_code for r in responses]
        assert 200 in codes and 429 in codes, codes
        for r in responses:
            if r.status_code == 429:
                assert r.headers["retry-after"] == "1"
                assert error_of(r)["type"] == "rate_limit_error"
    finally:
        s.stop()


def test_sampling_defaults_come_from_the_graph_and_change_live():
    s = Server(extra_toml="\n[sampling]\ntemperature = 0\nmax_tokens = 5\n")
    try:
        c = openai.OpenAI(base_url=s.base_url + "/v1", api_key="unused", max_retries=0)

        def left_out():
            return c.completions.create(model=MODEL_NAME, prompt="Once upon a time")

        def given(**kw):
            return c.completions.create(model=MODEL_NAME, prompt="Once upon a time", **kw)

        # The graph's defaults are what a request that leaves them out gets: greedy, 5 tokens.
        greedy5 = given(temperature=0, max_tokens=5)
        assert greedy5.usage.completion_tokens == 5
        for _ in range(2):
            r = left_out()
            assert r.choices[0].text == greedy5.choices[0].text
            assert r.usage.completion_tokens == 5
        # A request's own values win.
        assert given(max_tokens=2, temperature=0).usage.completion_tokens == 2

        # An edited graph changes them for the requests that follow, without a restart.
        graph = pathlib.Path(s.dir.name) / "graph.toml"
        edited = graph.read_text().replace("max_tokens = 5", "max_tokens = 3")
        (graph.parent / "next.toml").write_text(edited)
        (graph.parent / "next.toml").rename(graph)
        deadline = time.time() + 20
        while "graph reload: applied" not in s.output() and time.time() < deadline:
            time.sleep(0.05)
        assert "graph reload: applied" in s.output(), s.output()
        r = left_out()
        assert r.usage.completion_tokens == 3
        assert r.choices[0].text == given(temperature=0, max_tokens=3).choices[0].text
    finally:
        s.stop()


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_the_served_tokens_and_pass_promtool(server, client):
    before = httpx.get(server.base_url + "/metrics").text
    r = client.completions.create(model=MODEL_NAME, prompt="Count me", max_tokens=7, temperature=0)
    after = httpx.get(server.base_url + "/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    gained = metric_value(after.text, "moeflow_generation_tokens_total") - metric_value(before, "moeflow_generation_tokens_total")
    assert gained == r.usage.completion_tokens
    assert 'moeflow_http_requests_total{endpoint="/v1/completions",status="200"}' in after.text
    assert "moeflow_time_to_first_token_seconds_bucket" in after.text
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed (Debian package prometheus); the counting was checked")
    check = subprocess.run([promtool, "check", "metrics"], input=after.text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stdout + check.stderr
