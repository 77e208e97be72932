"""A loopback HTTP server for download tests (ranges, cuts, hangs) and catalog entries for it."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from models.catalog import CatalogEntry

HANG_LIMIT_S = 10.0  # a "never answering" handler gives up after this (the test ends far sooner)


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    behaviour: dict[str, str] = field(
        default_factory=dict
    )  # normal | cut | hang | html | no-range | slow
    cuts_left: int = 1
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        state.requests.append((self.path, self.headers.get("Range")))
        behaviour = state.behaviour.get(self.path, "normal")
        if behaviour == "hang":
            state.release.wait(HANG_LIMIT_S)
            self.close_connection = True
            return
        if behaviour == "html":
            body = b"<html><body>Google Drive can't scan this file for viruses.</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and behaviour != "no-range":
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour == "slow":  # 64 kB every 20 ms, so a client can cancel mid-transfer
            try:
                for offset in range(0, len(body), 65536):
                    if state.release.is_set():
                        break
                    self.wfile.write(body[offset : offset + 65536])
                    self.wfile.flush()
                    time.sleep(0.02)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client cancelled
            return
        if behaviour == "cut" and state.cuts_left > 0:
            state.cuts_left -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True  # the client sees the connection end mid-file
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


@dataclass
class LoopbackServer:
    state: ServerState
    base_url: str

    def add(self, name: str, data: bytes, behaviour: str = "normal") -> str:
        self.state.files[f"/{name}"] = data
        self.state.behaviour[f"/{name}"] = behaviour
        return f"{self.base_url}/{name}"


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    """A real HTTP server on 127.0.0.1 (loopback only), stopped after the test."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ServerState()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield LoopbackServer(server.state, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def payload(size: int = 1_500_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_for(url: str, data: bytes, **changes: object) -> CatalogEntry:
    entry = CatalogEntry(
        name="tiny",
        title="Tiny test model",
        kind="stylegan2",
        format="rosinality .pt",
        resolution=16,
        url=url,
        filename="tiny.pt",
        licence="test",
        source_page="http://127.0.0.1/",
        size_bytes=len(data),
        sha256=sha(data),
    )
    return replace(entry, **changes)


def catalog_file(tmp_path: Path, entries: list[CatalogEntry]) -> Path:
    path = tmp_path / "catalog.json"
    fields = CatalogEntry.__dataclass_fields__
    path.write_text(json.dumps({"models": [{k: getattr(e, k) for k in fields} for e in entries]}))
    return path
