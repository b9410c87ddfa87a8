"""Start, kill, restart and always reap the server processes of a runtime swarm (docs/runtime.md §2, §4).

``ServerGroup`` is a context manager: on normal exit, on an exception and on Ctrl-C (KeyboardInterrupt) it
terminates and waits for every child; each child also asks the kernel to kill it if its parent (the fork
server, which exits with the launcher) dies.
Start-up problems (an occupied port, a server that dies while starting) become one SwarmplanError line.
"""

from __future__ import annotations

import multiprocessing
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


_CONTEXT = None


def _context():
    """One fork server per launcher process with torch and transformers imported once: a server then starts
    in well under a second instead of re-importing them (seconds of CPU each)."""
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["swarmplan.runtime.server"])
        _CONTEXT = ctx
    return _CONTEXT


class ServerGroup:
    def __init__(
        self,
        arch: LlamaArch,
        specs: list[ServerSpec],
        secret: bytes,
        host: str = "127.0.0.1",
        device: str = "cpu",
        threads: int = 1,
        start_timeout_s: float = 120.0,
    ):
        self.arch, self.specs, self.secret = arch, {s.index: s for s in specs}, secret
        self.host, self.device, self.threads, self.start_timeout_s = host, device, threads, start_timeout_s
        self.procs: dict[int, object] = {}  # multiprocessing.Process
        self.ports: dict[int, int] = {}
        self._pipes: dict[int, object] = {}

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
        return dict(
            name=spec.name,
            first_block=spec.first_block,
            n_blocks=spec.n_blocks,
            slots=spec.slots,
            arch=self.arch.to_dict(),
            secret=self.secret.hex(),
            host=self.host,
            port=spec.port,
            links={p: list(v) for p, v in spec.links.items()},
            device=self.device,
            threads=self.threads,
        )

    def _spawn(self, j: int) -> None:
        from swarmplan.runtime.server import process_main

        ctx = _context()
        here, there = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=process_main,
            args=(self._config(self.specs[j]), there),
            daemon=True,
            name=f"swarmplan-server-{self.specs[j].name}",
        )
        proc.start()
        there.close()
        self.procs[j], self._pipes[j] = proc, here

    def _await_ready(self, j: int, deadline: float) -> None:
        proc, pipe, spec = self.procs[j], self._pipes.pop(j), self.specs[j]
        msg = None
        try:
            while msg is None and time.monotonic() < deadline:
                if pipe.poll(0.2):
                    msg = pipe.recv()
                elif not proc.is_alive():
                    break
        except EOFError:
            pass
        finally:
            pipe.close()
        if msg is not None and msg[0] == "ready":
            self.ports[j] = int(msg[1])
            return
        why = (
            msg[1]
            if msg
            else (f"not ready after {self.start_timeout_s:g} s" if proc.is_alive() else f"exited with status {proc.exitcode}")
        )
        port_problem = "cannot listen" in why
        raise SwarmplanError(
            "--port" if port_problem else "runtime",
            f"server {spec.name} did not start: {why}",
            "choose a free port (or 0 to let the system pick)" if port_problem else "check the model and the device",
        )

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
            proc.join()

    def restart(self, j: int) -> int:
        """Bring server j back with the same span and slots (an empty cache); returns its new port."""
        self.kill(j)
        self.specs[j].port = 0
        self.start([j])
        return self.ports[j]

    def alive(self) -> list[int]:
        return [j for j, p in self.procs.items() if p.is_alive()]

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()
        end = time.monotonic() + 5.0
        for proc in self.procs.values():
            proc.join(max(0.1, end - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in self._pipes.values():
            pipe.close()
        self.procs.clear()
        self.ports.clear()
        self._pipes.clear()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]
