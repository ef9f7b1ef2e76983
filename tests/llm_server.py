"""A real HTTP server on loopback that speaks /v1/chat/completions, for testing the LLM paths.

Behaviour is chosen by a marker in the last user message:
  [429]        first request -> 429 with Retry-After: 1, then a normal answer
  [500]        first request -> 500, then a normal answer
  [hang]       every request sleeps `hang_s` before answering (past the client's timeout)
  [malformed]  200 with a body that is not JSON
  [truncated]  finish_reason "length"
  [refuse]     a refusal
  [slow]       answers after `slow_s`
  [negative-usage] [no-usage] [usage-int] [usage-null-total] [usage-huge]: usage of that shape
Otherwise the answer is `responder(user_text)` (default: "echo: <text>").
Requests are counted per user text in `counts` and in total in `total`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self, responder=None, hang_s: float = 3.0, slow_s: float = 0.3):
        self.responder = responder or (lambda text: f"echo: {text}")
        self.hang_s, self.slow_s = hang_s, slow_s
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        self.auth_headers: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                with server.lock:
                    server.counts[text] += 1
                    n = server.counts[text]
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                if "[429]" in text and n == 1:
                    return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
                if "[500]" in text and n == 1:
                    return self._send(500, {"error": {"message": "boom"}})
                if "[hang]" in text:
                    time.sleep(server.hang_s)
                if "[slow]" in text:
                    time.sleep(server.slow_s)
                if "[malformed]" in text:
                    return self._send_raw(200, b'{"id": "x", "choices": [ {oops')
                if "[error-body]" in text:
                    return self._send(200, {"error": {"message": "overloaded", "type": "server_error"}})
                finish, content, refusal = "stop", server.responder(text), None
                if "[truncated]" in text:
                    finish, content = "length", "<question>cut off mid-"
                if "[refuse]" in text:
                    content, refusal = None, "I can't help with that."
                if "[empty]" in text:
                    content = ""
                usage = {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
                if "[negative-usage]" in text:
                    usage = {"prompt_tokens": -10, "completion_tokens": -20, "total_tokens": -30}
                if "[no-usage]" in text:
                    usage = None
                if "[usage-int]" in text:
                    usage = 30
                if "[usage-null-total]" in text:
                    usage = {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": None}
                if "[usage-huge]" in text:
                    usage = {"prompt_tokens": 10, "completion_tokens": 999_990, "total_tokens": 1_000_000}
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{n}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": finish,
                                "message": {"role": "assistant", "content": content, "refusal": refusal},
                            }
                        ],
                        "usage": usage,
                    },
                )

            def _send(self, code, obj, headers=None):
                self._send_raw(code, json.dumps(obj, ensure_ascii=False).encode(), headers)

            def _send_raw(self, code, data, headers=None):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
