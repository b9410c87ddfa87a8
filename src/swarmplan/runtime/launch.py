"""Start, kill, restart and always reap the server processes of a runtime swarm (docs/runtime.md §2, §4).

``ServerGroup`` is a context manager: on normal exit, on an exception and on Ctrl-C (KeyboardInterrupt) it
terminates and waits for every child; each child also asks the kernel to kill it if the launcher dies.
Start-up problems (an occupied port, a server that dies while starting) become one SwarmplanError line.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from swarmplan.errors import SwarmplanError
from swarmplan.runtime.model import LlamaArch


@dataclass
class ServerSpec:
    """One server process: its blocks (1-based, inclusive start), slots and emulated links to each peer."""

    index: int
    name: str
    first_block: int
    n_blocks: int
    slots: int
    links: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # peer → (RTT ms, Mbit/s)
    port: int = 0


class ServerGroup:
    def __init__(self, arch: LlamaArch, specs: list[ServerSpec], secret: bytes, host: str = "127.0.0.1",
                 device: str = "cpu", threads: int = 1, start_timeout_s: float = 120.0):
        self.arch, self.specs, self.secret = arch, {s.index: s for s in specs}, secret
        self.host, self.device, self.threads, self.start_timeout_s = host, device, threads, start_timeout_s
        self.procs: dict[int, subprocess.Popen] = {}
        self.ports: dict[int, int] = {}
        self._logs: dict[int, object] = {}

    def __enter__(self) -> "ServerGroup":
        try:
            self.start(list(self.specs))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _config(self, spec: ServerSpec) -> dict:
        return dict(name=spec.name, first_block=spec.first_block, n_blocks=spec.n_blocks, slots=spec.slots,
                    arch=self.arch.to_dict(), secret=self.secret.hex(), host=self.host, port=spec.port,
                    links={p: list(v) for p, v in spec.links.items()}, device=self.device, threads=self.threads,
                    parent_pid=os.getpid())

    def _spawn(self, j: int) -> None:
        spec = self.specs[j]
        log = tempfile.TemporaryFile()
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        proc = subprocess.Popen([sys.executable, "-m", "swarmplan.runtime.server"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, env=env)
        self.procs[j], self._logs[j] = proc, log
        proc.stdin.write(json.dumps(self._config(spec)).encode())
        proc.stdin.close()

    def _await_ready(self, j: int, deadline: float) -> None:
        proc = self.procs[j]
        spec = self.specs[j]
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                line = proc.stdout.readline()
                break
            if proc.poll() is not None:
                break
        if line.startswith(b"READY "):
            self.ports[j] = int(line.split()[1])
            return
        proc.poll()
        log = self._logs[j]
        log.seek(0)
        lines = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
        why = next((ln[6:] for ln in lines if ln.startswith("ERROR ")), lines[-1] if lines else "no output")
        if proc.returncode is None:
            why = f"not ready after {self.start_timeout_s:g} s"
        field_ = "--port" if "cannot listen" in why else "runtime"
        fix = ("choose a free port (or 0 to let the system pick)" if field_ == "--port"
               else "check the server's model and device (see the message)")
        raise SwarmplanError(field_, f"server {spec.name} did not start: {why}", fix)

    def start(self, indices: list[int]) -> None:
        for j in indices:
            self._spawn(j)
        deadline = time.monotonic() + self.start_timeout_s
        for j in indices:
            self._await_ready(j, deadline)

    def kill(self, j: int) -> None:
        """Fail server j abruptly (SIGKILL), as a crashed or disconnected PETALS server."""
        proc = self.procs.pop(j, None)
        self.ports.pop(j, None)
        if proc is not None:
            proc.kill()
            proc.wait()

    def restart(self, j: int) -> int:
        """Bring server j back with the same span and slots (an empty cache); returns its new port."""
        self.kill(j)
        self.specs[j].port = 0
        self.start([j])
        return self.ports[j]

    def alive(self) -> list[int]:
        return [j for j, p in self.procs.items() if p.poll() is None]

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        end = time.monotonic() + 5.0
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        for log in self._logs.values():
            log.close()
        self.procs.clear()
        self.ports.clear()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]
