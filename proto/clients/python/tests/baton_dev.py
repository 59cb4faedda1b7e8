"""A real `baton dev` for the tests: every listener on a free loopback port,
its data in a temporary directory, its address and API key read from the
banner. Nothing is mocked: the client talks to the control service, which
routes to the embedded queue (nobody signed in: NO_AGENTS) and then to the
scripted demo contact center."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional

_PORT_FLAGS = [
    "--grpc-listen",
    "--http-listen",
    "--queue-listen",
    "--desktop-listen",
    "--sip-listen",
    "--sip-bind",
    "--demo-listen",
]


class BatonDev:
    def __init__(self) -> None:
        binary = os.environ.get("BATON_BIN") or str(
            Path(__file__).resolve().parents[4] / "target" / "release" / "baton"
        )
        self._dir = tempfile.TemporaryDirectory(prefix="baton-python-client-")
        args = [binary, "dev", "--data-dir", self._dir.name]
        for flag in _PORT_FLAGS:
            args += [flag, "127.0.0.1:0"]
        self._log = open(Path(self._dir.name) / "baton-dev.log", "wb")
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log)
        #: The embedded queue's agent desktop (`http://127.0.0.1:port`) and
        #: its agent's sign-in, from the banner.
        self.desktop = ""
        self.agent: "tuple[str, str]" = ("", "")
        self.address, self.api_key = self._read_banner(deadline=time.monotonic() + 60)

    def _read_banner(self, deadline: float) -> "tuple[str, str]":
        assert self._process.stdout is not None
        address: Optional[str] = None
        key: Optional[str] = None
        while address is None or key is None:
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"baton dev did not start; its log: {self.log()}")
            ready, _, _ = select.select([self._process.stdout], [], [], 1.0)
            if not ready:
                continue
            line = self._process.stdout.readline().decode()
            found = re.search(r"export BATON_API_KEY=(bk_\S+)", line)
            if found:
                key = found.group(1)
            desktop = re.match(r"\s*agent desktop\s+(http://\S+?)/?\s", line)
            if desktop:
                self.desktop = desktop.group(1)
            agent = re.match(r"\s*agent\s+(\S+) / (\S+)", line)
            if agent:
                self.agent = (agent.group(1), agent.group(2))
            if line.startswith("{"):
                ready_line = json.loads(line).get("ready", {})
                if ready_line.get("service") == "baton-control":
                    address = ready_line["grpc"]
        # Keep reading, so that a full pipe never blocks the process.
        threading.Thread(target=self._drain, daemon=True).start()
        return address, key

    def _drain(self) -> None:
        assert self._process.stdout is not None
        for _ in self._process.stdout:
            pass

    def log(self) -> str:
        self._log.flush()
        return (Path(self._dir.name) / "baton-dev.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()
        self._dir.cleanup()


class CuttableProxy:
    """A TCP proxy on loopback in front of `upstream` whose connections the
    test can cut at once, as a load balancer or a network fault would: the
    client sees its stream break and must reconnect."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            with self._lock:
                self.accepted += 1
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()

    def cut(self) -> None:
        """Resets every open connection; new ones are still accepted."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                # Shut down first: it wakes the thread blocked reading it,
                # which a close alone would not.
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self._listener.close()
        self.cut()
