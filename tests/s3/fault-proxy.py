#!/usr/bin/python3
"""fault-proxy.py: an HTTP proxy in front of the S3 gateway that fails
requests on purpose, for the S3 back end's retry tests.

    fault-proxy.py UPSTREAM_HOST:PORT FAILS

Listens on a free port of 127.0.0.1 and prints it on the first line of its
standard output. The first FAILS times a request (method, path and query)
comes, it answers 503 with S3's SlowDown error body; after that it passes
the request to the gateway unchanged (the Host header too, which the
signature covers) and its answer back. Runs until killed.
"""

import http.client
import http.server
import sys
import threading

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-connection"}
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b'<Message>injected by fault-proxy.py</Message></Error>')


def main():
    upstream, fails = sys.argv[1], int(sys.argv[2])
    seen = {}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            key = (self.command, self.path)
            with lock:
                seen[key] = seen.get(key, 0) + 1
                fail = seen[key] <= fails
            if fail:
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(SLOWDOWN)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(SLOWDOWN)
                return
            conn = http.client.HTTPConnection(upstream, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            length = resp.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
