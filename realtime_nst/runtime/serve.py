"""The HTTP side of ``rtnst serve``: a page with the live image and controls, a clean page for OBS,
the bare MJPEG stream (multipart/x-mixed-replace) and small JSON endpoints, on the standard
library's ThreadingHTTPServer (one thread per viewer; frames come from a ``hub.FrameHub``)."""

from __future__ import annotations

import hmac
import importlib.resources
import ipaddress
import json
import logging
import secrets
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..errors import OptionError

log = logging.getLogger("rtnst")
BOUNDARY = "rtnstframe"
TOKEN_HEADER = "X-Rtnst-Token"
MAX_BODY_BYTES = 4096
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches; a name other than localhost counts as not."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def server_token(host: str, token: str | None) -> str | None:
    """The token requests must carry: the one given, else a new one off loopback, else none."""
    return token or (None if is_loopback(host) else secrets.token_urlsafe(16))


def token_ok(expected: str | None, given: str | None) -> bool:
    """No token needed (loopback), or the one given matches (in constant time)."""
    return expected is None or (given is not None and hmac.compare_digest(expected.encode(), given.encode()))


def page_html(mode: str) -> bytes:
    """The page shipped beside this module: ``full`` (image, figures, controls) or ``clean`` (the image alone)."""
    text = importlib.resources.files(__package__).joinpath("serve_page.html").read_text(encoding="utf-8")
    return text.replace('data-mode="full"', f'data-mode="{mode}"').encode()


class LiveServer:
    """Serves a FrameHub and LiveControls on ``host:port`` (0: a free port) in a background thread.

    Off loopback every request needs ``token`` (made up when not given; a token given is needed on
    loopback too), as ``?token=`` or the X-Rtnst-Token header. On loopback the Host header must name loopback too, so a web page the
    user visits cannot reach the server through a DNS name rebound to 127.0.0.1; and the controls
    take only JSON, which a foreign page cannot send without a CORS preflight this server refuses.
    """

    def __init__(self, hub, controls, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
                 client_timeout_s: float = 10.0) -> None:
        self.hub, self.controls = hub, controls
        self.loopback = is_loopback(host)
        self.token = server_token(host, token)
        self.client_timeout_s = client_timeout_s
        self.closing = threading.Event()
        try:
            self._httpd = _HTTPServer((host, port), _Handler)
        except OSError as exc:
            raise OptionError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (port=0 picks a free one)",
                              param=("port", "host")) from None
        self._httpd.live = self
        self.host, self.port = host, self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="rtnst-serve", daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else ("[::1]" if self.host == "::" else self.host)
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.port}{path}" + (f"?token={self.token}" if self.token else "")

    def close(self) -> None:
        if self.closing.is_set():
            return
        self.closing.set()
        self.hub.end()  # viewers waiting for a frame return now
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> "LiveServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a viewer stuck in a write never keeps the process alive
    block_on_close = False
    live: LiveServer

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):  # a viewer went away or stopped reading
            log.debug("rtnst: serve: %s left: %s", client_address[0], exc)
        else:
            log.warning("rtnst: serve: request from %s failed: %r", client_address[0], exc)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "rtnst"

    def setup(self) -> None:
        self.timeout = self.server.live.client_timeout_s  # a viewer that stops reading is dropped
        super().setup()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.debug("rtnst: serve: %s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error as JSON ``{"error": ...}``, the shape the page reads; the status line carries
        only the standard phrase (``message`` may quote the request)."""
        self.close_connection = True
        self.request_version = "HTTP/1.0"  # a garbled request line left it at 0.9, which gets no status line
        phrase = HTTPStatus(code).phrase
        self.log_error("code %d, message %s", code, message)
        body = json.dumps({"error": message or phrase}).encode()
        self.send_response(code, phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- routing

    def do_GET(self) -> None:
        route = self._route()
        if route is None:
            return
        path, live = route
        if path in ("/", "/index.html"):
            self._send(200, page_html("full"), "text/html; charset=utf-8")
        elif path == "/clean":
            self._send(200, page_html("clean"), "text/html; charset=utf-8")
        elif path == "/stream.mjpg":
            self._stream(live)
        elif path == "/frame.jpg":
            seq, data = live.hub.jpeg()
            if seq:
                self._send(200, data, "image/jpeg")
            else:
                self.send_error(503, "no frame yet")
        elif path == "/api/state":
            self._json(200, self._state(live))
        elif path == "/api/control":
            self.send_error(405, "use POST with a JSON body")
        else:
            self.send_error(404, "no such page")

    def do_POST(self) -> None:
        route = self._route()
        if route is None:
            return
        path, live = route
        if path != "/api/control":
            self.send_error(405 if path in ("/", "/clean", "/stream.mjpg", "/frame.jpg", "/api/state") else 404)
            return
        if self.headers.get_content_type() != "application/json":
            self.send_error(415, "the body must be application/json")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.send_error(411, "Content-Length needed")
            return
        if not 0 <= length <= MAX_BODY_BYTES:
            self.send_error(413, f"the body must be at most {MAX_BODY_BYTES} bytes")
            return
        try:
            changes = json.loads(self.rfile.read(length) or b"null")
            live.controls.apply(changes)
        except (ValueError, OptionError) as exc:  # JSONDecodeError is a ValueError
            self.send_error(400, str(exc))
            return
        self._json(200, self._state(live))

    def _not_allowed(self) -> None:
        self.send_error(405)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

    def _route(self):
        """(path, server) when the request may go on; else the error is sent and None returned."""
        live = self.server.live
        url = urlsplit(self.path)
        if live.loopback and (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower() not in LOOPBACK_NAMES:
            self.send_error(403, "Host must be a loopback name")
            return None
        given = self.headers.get(TOKEN_HEADER) or (parse_qs(url.query).get("token") or [None])[0]
        if not token_ok(live.token, given):
            self.send_error(403, "a valid token is needed (?token= or the X-Rtnst-Token header)")
            return None
        return url.path, live

    # --- responses

    def _state(self, live: LiveServer) -> dict:
        return {**live.controls.snapshot(), **live.hub.stats(), "token_required": live.token is not None}

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: dict) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _stream(self, live: LiveServer) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        hub, last = live.hub, 0
        with hub.viewing():
            while not live.closing.is_set():
                seq = hub.wait_newer(last, timeout_s=0.5)
                if seq is None:
                    return  # no more frames: the viewer keeps showing the last one
                if seq == last:
                    continue
                last, data = hub.jpeg()  # the newest, whatever this viewer missed meanwhile
                self.wfile.write(b"".join((f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}"
                                           "\r\n\r\n".encode(), data, b"\r\n")))

