#!/usr/bin/env python3
"""Loopback HTTP server for the image fetch tests: serves a directory with Range support and
misbehaves on request. Prints its port on stdout, then serves until killed.

    http_fixture.py DIR [--tls CERTDIR]

With --tls it serves https with a throwaway self-signed certificate for 127.0.0.1, made with the
openssl tool into CERTDIR/cert.pem (the file a client must trust) and CERTDIR/key.pem.

Knobs, as query parameters on any file:
    drop_after=N   the first such request sends the headers and N bytes, then drops the connection
    fail_times=N   the first N such requests get 500 Internal Server Error
    status=CODE    always answer CODE (e.g. 404, 429, 503) with a short body
    hang=1         accept the request and never answer
    norange=1      ignore Range headers (always 200 with the whole file)
    rate=BYTES     send the body at about BYTES per second
    redirect=URL   answer 302 Found with Location: URL
    chunked=1      send the file with Transfer-Encoding: chunked (no Content-Length)
    stall_after=N  send the headers and N bytes, then nothing (the connection stays open)
"once" and "the first N" count per path and query string. GET /_stats returns, per path,
{"requests": n, "range_requests": n, "bytes": body bytes sent}; /_stats itself is not counted.
"""
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROOT = sys.argv[1]
LOCK = threading.Lock()
STATS = {}  # path -> {"requests", "range_requests", "bytes"}
SEEN = {}   # path?query -> requests so far
CHUNK = 64 * 1024


def count(path, key, amount=1):
    with LOCK:
        entry = STATS.setdefault(path, {"requests": 0, "range_requests": 0, "bytes": 0})
        entry[key] += amount


def parse_range(header, size):
    """'bytes=N-' or 'bytes=N-M' -> (start, end inclusive), or None if absent/unparsable."""
    if not header or not header.startswith("bytes="):
        return None
    first, _, last = header[len("bytes="):].partition("-")
    if not first.isdigit():
        return None
    return int(first), int(last) if last.isdigit() else size - 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        url = urlsplit(self.path)
        count(url.path, "requests")
        file = os.path.join(ROOT, url.path.lstrip("/"))
        if not os.path.isfile(file):
            return self.reply(404, b"", head=True)
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(file)))
        self.end_headers()

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_stats":
            with LOCK:
                return self.reply(200, json.dumps(STATS).encode(), "application/json")
        knobs = {k: v[0] for k, v in parse_qs(url.query).items()}
        with LOCK:
            seen = SEEN.get(self.path, 0)
            SEEN[self.path] = seen + 1
        count(url.path, "requests")
        if knobs.get("hang"):
            time.sleep(3600)
            return
        if "redirect" in knobs:
            self.send_response(302)
            self.send_header("Location", knobs["redirect"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "status" in knobs:
            return self.reply(int(knobs["status"]), b"no\n")
        if seen < int(knobs.get("fail_times", 0)):
            return self.reply(500, b"try again\n")
        file = os.path.join(ROOT, url.path.lstrip("/"))
        if not os.path.isfile(file):
            return self.reply(404, b"not found\n")
        if knobs.get("chunked"):
            return self.send_chunked(file, url.path)
        self.send_file(file, url.path, knobs, drop=seen == 0 and "drop_after" in knobs)

    def send_chunked(self, file, path):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with open(file, "rb") as f:
            while True:
                data = f.read(CHUNK)
                if not data:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                count(path, "bytes", len(data))
        self.wfile.write(b"0\r\n\r\n")

    def send_file(self, file, path, knobs, drop):
        size = os.path.getsize(file)
        wanted = None if knobs.get("norange") else parse_range(self.headers.get("Range"), size)
        if wanted and wanted[0] >= size:
            count(path, "range_requests")
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % size)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = wanted if wanted else (0, size - 1)
        self.send_response(206 if wanted else 200)
        if wanted:
            count(path, "range_requests")
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        limit = int(knobs["drop_after"]) if drop else None
        if "stall_after" in knobs:
            self.send_body(file, path, start, int(knobs["stall_after"]), None, 0)
            self.wfile.flush()
            time.sleep(3600)
            return
        self.send_body(file, path, start, end - start + 1, limit, int(knobs.get("rate", 0)))

    def send_body(self, file, path, start, length, limit, rate):
        chunk = min(CHUNK, max(rate // 20, 1024)) if rate else CHUNK
        with open(file, "rb") as f:
            f.seek(start)
            sent = 0
            while sent < length:
                n = min(chunk, length - sent)
                if limit is not None:
                    n = min(n, limit - sent)
                    if n <= 0:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                data = f.read(n)
                self.wfile.write(data)
                sent += len(data)
                count(path, "bytes", len(data))
                if rate:
                    time.sleep(len(data) / rate)

    def reply(self, status, body, content_type="text/plain", head=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up half way (as kumo does on purpose) is no news


def make_certificate(cert_dir):
    cert, key = os.path.join(cert_dir, "cert.pem"), os.path.join(cert_dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def main():
    server = Server(("127.0.0.1", 0), Handler)
    if len(sys.argv) > 3 and sys.argv[2] == "--tls":
        cert, key = make_certificate(sys.argv[3])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
