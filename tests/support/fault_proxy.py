"""A fault-injecting HTTP proxy for integration tests (a test tool, not part of the SDK).

    python tests/support/fault_proxy.py --upstream http://127.0.0.1:PORT --port P --rate 0.3

Forwards every request to the upstream OpenAI-compatible server, except that a seeded random
share ``rate`` of POST requests get a fault instead: 429 with Retry-After, 500, a stalled
response (longer than the client's timeout), or a truncated, non-JSON 200 body. ``GET /stats``
returns the counts as JSON. Binds to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

FAULTS = ("429", "500", "stall", "truncated")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stall", type=float, default=8.0, help="seconds a stalled reply waits")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    lock = threading.Lock()
    stats = {"requests": 0, "forwarded": 0, **{f: 0 for f in FAULTS}}
    client = httpx.Client(base_url=args.upstream.rstrip("/").removesuffix("/v1"), timeout=300)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/stats":
                with lock:
                    self._send(200, json.dumps(stats).encode())
                return
            upstream = client.get(self.path)
            self._send(upstream.status_code, upstream.content)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                stats["requests"] += 1
                fault = rng.choice(FAULTS) if rng.random() < args.rate else None
                stats[fault or "forwarded"] += 1
            if fault == "429":
                self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "1"})
            elif fault == "500":
                self._send(500, b'{"error": {"message": "internal error"}}')
            elif fault == "stall":
                time.sleep(args.stall)
                self._send(504, b'{"error": {"message": "too late"}}')
            else:
                upstream = client.post(
                    self.path, content=body, headers={"Content-Type": "application/json"}
                )
                content = upstream.content
                if fault == "truncated":
                    content = content[: len(content) // 2]
                self._send(upstream.status_code, content)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
