#!/usr/bin/env python3
"""A real HTTP server on the loopback interface for the remote-shard tests: Python's
http.server serving a folder, counting the requests per path, with faults on request.

    shard_http.py DIR [--fail500 NAME:N] [--drop NAME:N] [--truncate NAME] [--rate BYTES_PER_S]

Prints "PORT <n>" once listening. GET /__stats returns {path: GET count}. --fail500 answers the
first N GETs of NAME with 500; --drop sends the first N GETs of NAME half of the body (with the
whole length announced) and closes the connection; --truncate serves NAME cut to half its bytes
(announced as such: a shard truncated on the server); --rate limits each response's bandwidth.
"""
import argparse
import http.server
import json
import os
import sys
import threading
import time
from collections import Counter

COUNTS = Counter()
LOCK = threading.Lock()


def parse_counts(items):
    out = {}
    for item in items or []:
        name, n = item.rsplit(":", 1)
        out[name] = int(n)
    return out


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self, path):
        with open(path, "rb") as f:
            data = f.read()
        name = os.path.basename(path)
        if name in self.server.truncate:
            data = data[: len(data) // 2]
        return data

    def _send(self, data, head_only=False):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"%d-%d"' % (len(data), int(os.path.getmtime(self._path()) * 1e6)))
        self.send_header("Last-Modified", self.date_time_string(int(os.path.getmtime(self._path()))))
        self.end_headers()
        if head_only:
            return
        rate = self.server.rate
        step = 64 << 10
        for i in range(0, len(data), step):
            self.wfile.write(data[i : i + step])
            if rate:
                time.sleep(min(step, len(data) - i) / rate)

    def _path(self):
        return self.translate_path(self.path.split("?", 1)[0])

    def do_HEAD(self):
        path = self._path()
        if not os.path.isfile(path):
            self.send_error(404)
            return
        self._send(self._body(path), head_only=True)

    def do_GET(self):
        if self.path == "/__stats":
            with LOCK:
                body = json.dumps(dict(COUNTS)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        path = self._path()
        name = os.path.basename(path)
        with LOCK:
            COUNTS[self.path] += 1
            n = COUNTS[self.path]
        if not os.path.isfile(path):
            self.send_error(404)
            return
        if n <= self.server.fail500.get(name, 0):
            self.send_error(500, "injected failure")
            return
        data = self._body(path)
        if n <= self.server.drop.get(name, 0):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._send(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--fail500", action="append")
    ap.add_argument("--drop", action="append")
    ap.add_argument("--truncate", action="append", default=[])
    ap.add_argument("--rate", type=float, default=0)
    a = ap.parse_args()
    os.chdir(a.dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.fail500, server.drop = parse_counts(a.fail500), parse_counts(a.drop)
    server.truncate, server.rate = set(a.truncate), a.rate
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
