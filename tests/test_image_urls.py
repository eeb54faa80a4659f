"""load_image(url) against a local server that misbehaves: a response that never
ends stops at max_bytes, a declared size over it is refused before reading, and a
server that trickles a real picture (headers or body) cannot stretch the one
deadline. Every handler stops by itself after a bounded time."""
from __future__ import annotations

import http.server
import io
import threading
import time

import pytest

import cnn_widgets as cw

TRICKLE_PAUSE = 0.05  # seconds between bytes
TRICKLE_LIMIT = 20.0  # a trickling handler gives up after this long, whatever happens


def _png() -> bytes:
    buffer = io.BytesIO()
    cw.sample_image("sneaker").save(buffer, format="PNG")
    return buffer.getvalue()


PICTURE = _png()


class Misbehaving(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _trickle(self, data: bytes) -> None:
        started = time.monotonic()
        for index in range(len(data)):
            if time.monotonic() - started > TRICKLE_LIMIT:
                return
            self.wfile.write(data[index:index + 1])
            self.wfile.flush()
            time.sleep(TRICKLE_PAUSE)

    def do_GET(self):
        try:
            if self.path == "/picture.png":
                self.send_response(200)
                self.send_header("Content-Length", str(len(PICTURE)))
                self.end_headers()
                self.wfile.write(PICTURE)
            elif self.path == "/endless":  # no length: 64 KB blocks, up to 100 MB, then it stops
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                block = b"\0" * 65536
                for _ in range(1600):
                    self.wfile.write(block)
            elif self.path == "/huge":  # declares 10 GB
                self.send_response(200)
                self.send_header("Content-Length", str(10_000_000_000))
                self.end_headers()
                self.wfile.write(PICTURE)
            elif self.path == "/trickle-body":
                self.send_response(200)
                self.send_header("Content-Length", str(len(PICTURE)))
                self.end_headers()
                self.wfile.flush()
                self._trickle(PICTURE)
            elif self.path == "/trickle-headers":
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(PICTURE)}\r\nX-Padding: {'p' * 400}\r\n\r\n".encode()
                self._trickle(head + PICTURE)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_a_well_behaved_server_gives_the_picture(server):
    assert cw.load_image(f"{server}/picture.png", timeout=10).size == (28, 28)


def test_an_endless_response_stops_at_max_bytes(server):
    with pytest.raises(ValueError, match=r"sent more than max_bytes=1,000,000 bytes"):
        cw.load_image(f"{server}/endless", max_bytes=1_000_000)


def test_a_declared_size_over_max_bytes_is_refused_before_reading(server):
    with pytest.raises(ValueError, match=r"is 10,000,000,000 bytes, more than max_bytes=50,000,000"):
        cw.load_image(f"{server}/huge")


def test_a_trickled_picture_cannot_stretch_the_deadline(server):
    # The whole picture would arrive in a few seconds, one byte at a time, each wait far
    # shorter than the timeout: only a deadline for the whole transfer refuses it.
    assert len(PICTURE) * TRICKLE_PAUSE > 2.0
    with pytest.raises(ValueError, match=r"did not arrive within timeout=1 s"):
        cw.load_image(f"{server}/trickle-body", timeout=1)


def test_trickled_headers_cannot_stretch_the_deadline(server):
    with pytest.raises(ValueError, match=r"did not arrive within timeout=1 s"):
        cw.load_image(f"{server}/trickle-headers", timeout=1)


@pytest.mark.parametrize("bad", [{"max_bytes": 0}, {"max_bytes": 1.5}, {"timeout": 0}, {"timeout": float("inf")}, {"timeout": True}])
def test_limits_must_be_positive_numbers(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"{name} must be a positive number"):
        cw.load_image("http://127.0.0.1:9/x.png", **bad)
