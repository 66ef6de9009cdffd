"""The labelling app on this machine: the page's files and the labelling API's own handler behind one HTTP server.

``LabellingServer`` (stdlib ``ThreadingHTTPServer``) plays the parts API Gateway, its JWT authorizer
and CloudFront play on AWS:

- ``/api/…``: each request becomes an API Gateway HTTP API (payload 2.0) event
  (``api_gateway.http_api_event``) and is handed to ``invoke`` (the labelling API's handler, called
  in this process against the embedded AWS: ``labelling_app``); its response becomes the HTTP response. The labeller is the
  ``X-Boxloop-Worker`` header, put into the event as the JWT claim the handler reads.
- ``/api/images/<task-id>?exp=…&sig=…``: the task's image. The handler answers with a presigned URL
  of the embedded AWS, which a browser on another machine cannot reach, so every ``image_url`` in an
  API response is replaced by this same-origin URL, signed with a key of this process and valid for
  ``image_url_seconds``; serving it fetches the presigned URL here (``fetch_image``).
- POST and DELETE requests are handled one at a time: an answer's write runs the human-answer Lambda, whose
  DynamoDB transaction the embedded AWS does not isolate from another one running at once.
- ``/config.json``: the page's bootstrap (``{"api_base": "/api", "auth": {"kind": "none" | "token"}}``).
- anything else: the built page under ``site_dir`` (``npm run build:web`` writes ``web/dist/``).

On a loopback host nothing else is asked (auth ``none``). On any other host (``--host``) every
``/api/`` request must carry ``Authorization: Bearer <token>``, a random token made at start and
printed in the app's URL (``#token=…``); image URLs are covered by their signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import mimetypes
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from boxloop.local.api_gateway import Invoke, handler_invoker, http_api_event, process_variables
from boxloop.local.resources import LABELLING_API_HANDLER, PROJECT_ROOT, LocalResources, TemplateError

SITE_DIR = PROJECT_ROOT / "web" / "dist"
"""Where ``npm run build:web`` puts the labelling page."""
API_PREFIX = "/api"
IMAGES_PATH = f"{API_PREFIX}/images/"
WORKER_HEADER = "X-Boxloop-Worker"
MAX_WORKER_CHARS = 128
MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_HOSTS = frozenset({"localhost"})
WRITE_METHODS = frozenset({"POST", "DELETE"})

FetchImage = Callable[[str], tuple[bytes, str]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


IMAGE_SIGNATURES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
"""The formats ingest registers, by their first bytes (uploads often carry no content type)."""


def fetch_url(url: str) -> tuple[bytes, str]:
    """GET ``url`` (a presigned URL of the embedded AWS): its bytes and their image type (else the stored type)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        data = response.read()
        stored_type = response.headers.get("Content-Type", "application/octet-stream")
    return data, next((kind for magic, kind in IMAGE_SIGNATURES.items() if data.startswith(magic)), stored_type)


class LabellingServer:
    """The labelling app on ``host:port`` (port 0: a free one); use as a context manager or ``start``/``stop``."""

    def __init__(
        self,
        invoke: Invoke,
        site_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        image_url_seconds: int = 300,
        fetch_image: FetchImage = fetch_url,
    ) -> None:
        if not (site_dir / "index.html").is_file():
            raise FileNotFoundError(
                f"{site_dir / 'index.html'} is missing: build the labelling page with `npm run build:web`"
            )
        self.invoke = invoke
        self.site_dir = site_dir.resolve()
        self.host = host
        self.image_url_seconds = image_url_seconds
        self.fetch_image = fetch_image
        self.token = None if is_loopback(host) else secrets.token_urlsafe(24)
        self.errors: list[str] = []
        self._signing_key = secrets.token_bytes(32)
        self._image_sources: dict[str, str] = {}
        self._lock = threading.Lock()
        self.writes = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The app's address for a person: with the token in the fragment when one is required."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"#token={self.token}" if self.token else "")

    @property
    def site_config(self) -> dict[str, Any]:
        return {"api_base": API_PREFIX, "auth": {"kind": "token" if self.token else "none"}}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="labelling-app", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> LabellingServer:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def record_error(self, error: str) -> None:
        """Keep a failure of the API's handler for the run's display (``errors``)."""
        with self._lock:
            self.errors.append(error)

    # ------------------------------------------------------------------ images
    def _signature(self, task_id: str, expires: int) -> str:
        return hmac.new(self._signing_key, f"{task_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def local_image_url(self, task_id: str, source_url: str) -> str:
        """A same-origin, signed, short-lived URL for the image at ``source_url`` (remembered per task)."""
        with self._lock:
            self._image_sources[task_id] = source_url
        expires = int(time.time()) + self.image_url_seconds
        return f"{IMAGES_PATH}{quote(task_id)}?exp={expires}&sig={self._signature(task_id, expires)}"

    def image_source(self, task_id: str, query: str) -> str | None:
        """The image URL a valid, unexpired signed URL stands for; None otherwise."""
        parameters = dict(parse_qsl(query))
        try:
            expires = int(parameters.get("exp", ""))
        except ValueError:
            return None
        if expires < time.time() or not hmac.compare_digest(
            parameters.get("sig", ""), self._signature(task_id, expires)
        ):
            return None
        with self._lock:
            return self._image_sources.get(task_id)

    def localize_image_urls(self, document: Any) -> Any:
        """``document`` with each TaskView's ``image_url`` (top level or under ``task``) made local."""
        if not isinstance(document, dict):
            return document
        if isinstance(document.get("task"), dict):
            document["task"] = self.localize_image_urls(document["task"])
        if isinstance(document.get("image_url"), str) and isinstance(document.get("task_id"), str):
            document["image_url"] = self.local_image_url(document["task_id"], document["image_url"])
        return document


def _handler_class(app: LabellingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_RequestHandler):
        server_app = app

    return Handler


class _RequestHandler(BaseHTTPRequestHandler):
    server_app: LabellingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: the run's display stays readable."""

    # ------------------------------------------------------------------ responses
    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), "application/json", {"Cache-Control": "no-store"})

    def _send_error(self, status: int, error: str) -> None:
        self._send_json(status, {"error": error})

    # ------------------------------------------------------------------ routing
    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        try:
            if parts.path.startswith(IMAGES_PATH) and self.command in {"GET", "HEAD"}:
                self._image(parts.path.removeprefix(IMAGES_PATH), parts.query)
            elif parts.path == API_PREFIX or parts.path.startswith(f"{API_PREFIX}/"):
                self._api(parts.path, parts.query)
            elif self.command in {"GET", "HEAD"}:
                self._static(parts.path)
            else:
                self._send_error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed on {parts.path}")
        except (BrokenPipeError, ConnectionResetError):
            return

    def _authorized(self) -> bool:
        token = self.server_app.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given.removeprefix("Bearer "), token)

    def _worker_id(self) -> str | None:
        worker = (self.headers.get(WORKER_HEADER) or "").strip()
        if not worker or len(worker) > MAX_WORKER_CHARS or not worker.isprintable():
            return None
        return worker

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {MAX_BODY_BYTES} bytes")
            return None
        return self.rfile.read(length) if length else b""

    def _api(self, path: str, query: str) -> None:
        app = self.server_app
        body = self._read_body()
        if body is None:
            return
        if not self._authorized():
            self._send_error(HTTPStatus.UNAUTHORIZED, "this app needs the token printed when it started (open its URL)")
            return
        worker = self._worker_id()
        if worker is None:
            self._send_error(
                HTTPStatus.UNAUTHORIZED, f"name yourself: the {WORKER_HEADER} header (1-{MAX_WORKER_CHARS} characters)"
            )
            return
        event = http_api_event(self.command, path, query, dict(self.headers), body, worker, self.client_address[0])
        try:
            if self.command in WRITE_METHODS:
                with app.writes:
                    response = app.invoke(event)
            else:
                response = app.invoke(event)
        except Exception as exc:  # the handler failed: API Gateway answers 500; kept for the run's display
            app.record_error(f"labelling API {self.command} {path}: {type(exc).__name__}: {exc}")
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"the labelling API failed: {type(exc).__name__}: {exc}")
            return
        self._send_api_response(response)

    def _send_api_response(self, response: dict[str, Any]) -> None:
        status = int(response.get("statusCode", 200))
        headers = {name: str(value) for name, value in (response.get("headers") or {}).items()}
        content_type = headers.pop("Content-Type", headers.pop("content-type", "application/json"))
        raw = response.get("body") or ""
        body = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")
        if content_type.startswith("application/json") and body:
            body = json.dumps(self.server_app.localize_image_urls(json.loads(body))).encode()
        headers.pop("Content-Length", None)
        self._send(status, body, content_type, {"Cache-Control": "no-store", **headers})

    def _image(self, task_id: str, query: str) -> None:
        app = self.server_app
        source = app.image_source(task_id, query)
        if source is None:
            self._send_error(HTTPStatus.FORBIDDEN, "this image link is invalid or has expired: reload the task")
            return
        data, content_type = app.fetch_image(source)
        self._send(HTTPStatus.OK, data, content_type, {"Cache-Control": f"private, max-age={app.image_url_seconds}"})

    def _static(self, path: str) -> None:
        app = self.server_app
        if path == "/config.json":
            self._send_json(HTTPStatus.OK, app.site_config)
            return
        relative = unquote(path).lstrip("/") or "index.html"
        target = (app.site_dir / relative).resolve()
        if not target.is_relative_to(app.site_dir) or not target.is_file():
            self._send_error(HTTPStatus.NOT_FOUND, f"no file {path}")
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, target.read_bytes(), content_type, {"Cache-Control": "no-cache"})


@contextmanager
def labelling_app(
    resources: LocalResources, host: str, port: int, site_dir: Path = SITE_DIR
) -> Iterator[LabellingServer]:
    """The labelling app of a local run whose stack has the browser workforce, serving while the block runs: the
    stack's API function called in this process, its variables set process-wide (``api_gateway``)."""
    environment = resources.function_environment.get(LABELLING_API_HANDLER)
    if environment is None:
        raise TemplateError(f"the stack has no {LABELLING_API_HANDLER} function: its workforce is not browser")
    seconds = int(environment.get("IMAGE_URL_SECONDS", "300"))
    invoke = handler_invoker(LABELLING_API_HANDLER)
    with process_variables(environment), LabellingServer(invoke, site_dir, host, port, seconds) as app:
        yield app
