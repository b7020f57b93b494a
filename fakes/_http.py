"""Server plumbing shared by the fake servers: keep-alive HTTP/1.1, no Nagle stalls, quiet
logs, and a way to cut open connections the way a server that goes away does."""

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # shutting down never waits for a request that sleeps on purpose

    def __init__(self, address, handler, fake):
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        if self.fake.verbose or not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_all(self) -> None:
        """Cut open keep-alive connections, as a server that goes away does."""
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs
    timeout = 60  # idle keep-alive connections do not live forever
    disable_nagle_algorithm = True  # no 40 ms Nagle + delayed-ACK stall between headers and body
    server: FakeServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args):
        if self.server.fake.verbose:
            super().log_message(format, *args)
