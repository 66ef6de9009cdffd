"""A tiny in-test stand-in for the labelling API (the HTTP contract of issue 13) that also serves web/dist.

It keeps its tasks in memory, leases them to whoever asks, records every answer and every request's headers,
and can be told to reject the next answers (422 / 409) so the page's error path can be checked.
"""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

from boxloop.corpus import CorpusSpec, render_image

IMAGE_WIDTH, IMAGE_HEIGHT = 800, 600
LEASE_EXPIRES_AT = "2031-01-01T12:00:00Z"
_STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_TASK_PATH = re.compile(r"^/api/tasks/([^/]+)$")
_ANSWER_PATH = re.compile(r"^/api/tasks/([^/]+)/answer$")
_IMAGE_PATH = re.compile(r"^/api/images/([^/]+)$")
_CLAIM_PATH = re.compile(r"^/api/claims/([^/]+)$")


def corpus_scene(index: int) -> tuple[bytes, list[dict]]:
    """An 800×600 JPEG cut from a boxloop corpus image, and its objects as contract boxes (original pixels)."""
    jpeg, objects = render_image(CorpusSpec(n_images=index + 1, image_size=IMAGE_WIDTH, easy_share=0.0, seed=3), index)
    top = (IMAGE_WIDTH - IMAGE_HEIGHT) // 2
    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).crop((0, top, IMAGE_WIDTH, top + IMAGE_HEIGHT)).save(buffer, format="JPEG")
    boxes = []
    for obj in objects:
        x, y, w, h = obj["bbox"]
        y0, y1 = max(y - top, 0), min(y + h - top, IMAGE_HEIGHT)
        if y1 - y0 >= 20:
            boxes.append({"class_id": obj["class_id"], "left": x, "top": y0, "width": w, "height": y1 - y0})
    return buffer.getvalue(), boxes


@dataclass
class FakeTask:
    task_id: str
    image: bytes
    boxes: list[dict] = field(default_factory=list)
    width: int = IMAGE_WIDTH
    height: int = IMAGE_HEIGHT

    def view(self) -> dict:
        return {
            "task_id": self.task_id,
            "image_url": f"/api/images/{self.task_id}?sig=test",
            "width": self.width,
            "height": self.height,
            "boxes": self.boxes,
            "lease_expires_at": LEASE_EXPIRES_AT,
        }


@dataclass
class FakeLabellingApi:
    """The fake API and static server; `start()` returns the page's URL."""

    dist: Path
    tasks: list[FakeTask]
    classes: list[dict]
    instructions: str = "Box every product; leave out price tags."
    auth: dict = field(default_factory=lambda: {"kind": "none"})
    budget: dict = field(default_factory=lambda: {"hours_total": 100.0, "hours_used": 12.5})
    batch_open: bool = True
    answers: list[dict] = field(default_factory=list)
    rejections: list[tuple[int, dict]] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    leases: dict[str, str] = field(default_factory=dict)
    submitted: set[str] = field(default_factory=set)
    released: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> str:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _batch(self) -> dict:
        open_ids = [t for t in self.tasks if t.task_id not in self.submitted and t.task_id not in self.leases.values()]
        return {
            "run_id": "run-test",
            "iteration": 1,
            "batch_open": self.batch_open,
            "classes": self.classes,
            "instructions": self.instructions,
            "counts": {
                "total": len(self.tasks),
                "submitted": len(self.submitted),
                "leased": len(self.leases),
                "open": len(open_ids),
            },
            "budget": self.budget,
        }

    def _claim(self, worker: str) -> dict | None:
        if worker in self.leases:
            return self._task(self.leases[worker]).view()
        taken = self.submitted | set(self.leases.values())
        for task in sorted(self.tasks, key=lambda task: task.task_id in self.released):  # skipped ones last
            if task.task_id not in taken:
                self.leases[worker] = task.task_id
                return task.view()
        return None

    def _task(self, task_id: str) -> FakeTask:
        return next(t for t in self.tasks if t.task_id == task_id)

    def _answer(self, worker: str, task_id: str, body: dict) -> tuple[int, dict]:
        if self.leases.get(worker) != task_id:
            return HTTPStatus.CONFLICT, {"error": f"task {task_id} is not leased to {worker}"}
        if self.rejections:
            return self.rejections.pop(0)
        self.answers.append({"task_id": task_id, "worker": worker, **body})
        self.submitted.add(task_id)
        del self.leases[worker]
        return HTTPStatus.OK, {"status": "accepted"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, payload: dict | None) -> None:
                if payload is None:
                    self._send(HTTPStatus.NO_CONTENT)
                else:
                    self._send(status, json.dumps(payload).encode())

            def _worker(self) -> str:
                return self.headers.get("X-Boxloop-Worker") or self.headers.get("Authorization") or "anonymous"

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path.startswith("/api/") and not _IMAGE_PATH.match(path):
                    api.headers.append(dict(self.headers))
                with api._lock:
                    if path == "/config.json":
                        return self._json(HTTPStatus.OK, {"api_base": "/api", "auth": api.auth})
                    if path == "/api/batch":
                        return self._json(HTTPStatus.OK, api._batch())
                    if match := _TASK_PATH.match(path):
                        return self._json(HTTPStatus.OK, api._task(match[1]).view())
                    if match := _IMAGE_PATH.match(path):
                        return self._send(HTTPStatus.OK, api._task(match[1]).image, "image/jpeg")
                name = "index.html" if path in ("/", "/callback") else path.lstrip("/")
                file = api.dist / name
                if "/" in name or not file.is_file():
                    return self._json(HTTPStatus.NOT_FOUND, {"error": f"no {path}"})
                return self._send(HTTPStatus.OK, file.read_bytes(), _STATIC_TYPES[file.suffix])

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                api.headers.append(dict(self.headers))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with api._lock:
                    if path == "/api/claims" and not api.batch_open:
                        return self._json(HTTPStatus.CONFLICT, {"error": "no batch is open"})
                    if path == "/api/claims":
                        claimed = api._claim(self._worker())
                        return self._json(HTTPStatus.OK, None if claimed is None else {"task": claimed})
                    if match := _ANSWER_PATH.match(path):
                        return self._json(*api._answer(self._worker(), match[1], body))
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no {path}"})

            def do_DELETE(self) -> None:
                path = urlsplit(self.path).path
                api.headers.append(dict(self.headers))
                with api._lock:
                    if (match := _CLAIM_PATH.match(path)) and api.leases.get(self._worker()) == match[1]:
                        del api.leases[self._worker()]
                        api.released.append(match[1])
                    return self._send(HTTPStatus.NO_CONTENT)

        return Handler
