#!/usr/bin/env python3
"""A webhook endpoint for failure tests: answers 204 to every POST and appends
the X-Event-Id header to a file, one line per delivery (duplicates included).

usage: webhook-receiver.py PORT FILE
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, LOG = int(sys.argv[1]), sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        self.rfile.read(length)
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(self.headers.get("x-event-id", "-") + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
