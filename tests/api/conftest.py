"""Starts a real `moeflow serve` on the embedded demo model for the API tests.

The server runs the whole pipeline (HTTP gateway, scheduler, router, expert shard actors) in one
process on 127.0.0.1 with free ports; tests talk to it with the official `openai` client and with
raw HTTP (httpx) for malformed requests.
"""
import os
import pathlib
import socket
import subprocess
import tempfile
import time

import httpx
import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("MOEFLOW_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
BINARY = os.environ.get("MOEFLOW_BINARY", str(SOURCE_DIR / "build" / "moeflow"))
MODEL_DIR = pathlib.Path(os.environ.get("MOEFLOW_TEST_MODEL", SOURCE_DIR / "models" / "demo"))
MODEL_NAME = "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, api_key: str | None = None, extra_toml: str = ""):
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        graph = pathlib.Path(self.dir.name) / "graph.toml"
        graph.write_text(
            f'[model]\npath = "{MODEL_DIR}"\n\n[api]\nport = {self.port}\n\n'
            f"[metrics]\nport = {free_port()}\n{extra_toml}"
        )
        self.log = open(pathlib.Path(self.dir.name) / "server.log", "w+")
        args = [BINARY, "serve", "--graph", str(graph), "--model-name", MODEL_NAME]
        if api_key:
            args += ["--api-key", api_key]
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.base_url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moeflow serve exited early:\n{self.output()}")
            try:
                if httpx.get(self.base_url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"moeflow serve did not become ready:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        self.dir.cleanup()


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()
