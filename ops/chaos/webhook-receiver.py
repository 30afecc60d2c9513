#!/usr/bin/env python3
"""A webhook endpoint for failure tests: answers 204 to every POST and appends
the X-Event-Id header to a file, one line per delivery (duplicates included).

With POISON_AFTER_S and POISON_FOR_S it also refuses one key: the task of the
first notification received POISON_AFTER_S seconds or more after it started is
answered 500 for POISON_FOR_S seconds from then. Each line is then
`event_id task_id latency_ms answered_at_s status`, where latency_ms is the
time from the event's timestamp (the backend's write) to this delivery.

usage: webhook-receiver.py PORT FILE [POISON_AFTER_S POISON_FOR_S]
"""
import json
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, LOG = int(sys.argv[1]), sys.argv[2]
POISON = len(sys.argv) == 5
AFTER_S, FOR_S = (float(sys.argv[3]), float(sys.argv[4])) if POISON else (0.0, 0.0)
STARTED = time.time()
LOCK = threading.Lock()
POISONED = {"task": None, "until": 0.0}


def poisoned(task_id, now):
    with LOCK:
        if POISONED["task"] is None and now - STARTED >= AFTER_S:
            POISONED["task"], POISONED["until"] = task_id, now + FOR_S
            with open(LOG + ".poison", "w", encoding="utf-8") as f:
                f.write(f"{task_id} {now:.3f} {now + FOR_S:.3f}\n")
        return POISONED["task"] == task_id and now < POISONED["until"]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        event_id = self.headers.get("x-event-id", "-")
        if not POISON:
            with open(LOG, "a", encoding="utf-8") as f:
                f.write(event_id + "\n")
            self.send_response(204)
            self.end_headers()
            return
        now = time.time()
        event = json.loads(body)
        task_id = event["payload"]["task_id"]
        written = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        refused = poisoned(task_id, now)
        with open(LOG, "a", encoding="utf-8") as f:
            status = "refused" if refused else "ok"
            f.write(f"{event_id} {task_id} {(now - written) * 1000:.1f} {now:.3f} {status}\n")
        self.send_response(500 if refused else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    # NB: the default listen backlog (5) overflows when the event service sends
    # a burst (Redis back after an outage): connections then wait for SYN
    # retransmits, the sender's 5 s timeout fires although the request is then
    # read and logged, and the retry is a second delivery.
    request_queue_size = 1024
    daemon_threads = True


Server(("127.0.0.1", PORT), Handler).serve_forever()
