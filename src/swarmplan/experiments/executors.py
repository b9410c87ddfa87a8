"""Where sweep tasks run: in this process, in local worker processes, or on a Dask cluster (docs/research.md §3).

Every executor yields ``(task, result)`` as tasks finish, keeping at most ``window`` tasks in flight, so the
driver's memory does not grow with the number of tasks. Results never depend on the executor: a task is
seeded by its own (seed, run) and the sweep sorts rows before writing the final table.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

from swarmplan.errors import SwarmplanError


class Executor:
    """Interface: ``imap_unordered(fn, tasks)`` and a short ``describe()`` for logs and reports."""

    workers: int = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def describe(self) -> str:
        raise NotImplementedError

    def imap_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError


class SerialExecutor(Executor):
    def describe(self) -> str:
        return "serial (this process)"

    def imap_unordered(self, fn, tasks):
        for t in tasks:
            yield t, fn(t)


class _Windowed(Executor):
    """Submit lazily, keep ``2 × workers`` tasks in flight, yield as they complete."""

    def _submit(self, fn, task):
        raise NotImplementedError

    def _wait_one(self, pending: dict) -> list:
        raise NotImplementedError

    def imap_unordered(self, fn, tasks):
        window = max(2, 2 * self.workers)
        it = iter(tasks)
        pending: dict = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < window:
                    try:
                        t = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[self._submit(fn, t)] = t
                if not pending:
                    return
                for fut in self._wait_one(pending):
                    yield pending.pop(fut), fut.result()
        finally:
            for fut in pending:
                fut.cancel()


class LocalExecutor(_Windowed):
    """``--jobs N``: N worker processes on this machine."""

    def __init__(self, jobs: int):
        self.workers = jobs
        self._pool = ProcessPoolExecutor(max_workers=jobs)

    def describe(self) -> str:
        return f"local processes ({self.workers})"

    def _submit(self, fn, task):
        return self._pool.submit(fn, task)

    def _wait_one(self, pending):
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        return list(done)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(_Windowed):
    """``--dask local`` (a LocalCluster on this machine) or ``--dask tcp://HOST:PORT`` (a running scheduler).

    Workers must have swarmplan installed (same version); they receive each task's validated scenario, so
    only scenario files' *relative data paths* (topologies, traces outside the package) must exist on them.
    """

    def __init__(self, address: str, n_workers: int | None = None, cluster_kwargs: dict | None = None):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise SwarmplanError(
                "--dask", "dask.distributed is not installed", 'pip install "swarmplan[research]" (here and on every worker)'
            ) from None
        self._cluster = None
        if address == "local":
            kwargs = {
                "n_workers": n_workers or 2,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
                **(cluster_kwargs or {}),
            }
            self._cluster = LocalCluster(**kwargs)
            self._client = Client(self._cluster)
        else:
            if not address.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
                raise SwarmplanError(
                    "--dask",
                    f"{address!r} is neither 'local' nor a scheduler address",
                    "give --dask local or --dask tcp://HOST:PORT",
                )
            try:
                self._client = Client(address, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise SwarmplanError(
                    "--dask",
                    f"cannot reach the scheduler at {address}: {exc}",
                    "start one with `dask scheduler` and check the address",
                ) from None
        info = self._client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        self.address = address

    def describe(self) -> str:
        where = "LocalCluster" if self._cluster is not None else self.address
        return f"dask ({where}, {self.workers} worker threads)"

    def _submit(self, fn, task):
        return self._client.submit(fn, task, pure=False)

    def _wait_one(self, pending):
        from dask.distributed import wait as dwait

        done = dwait(list(pending), return_when="FIRST_COMPLETED").done
        return list(done)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(jobs: int = 1, dask: str | None = None, dask_workers: int | None = None) -> Executor:
    if dask is not None:
        return DaskExecutor(dask, dask_workers)
    return LocalExecutor(jobs) if jobs > 1 else SerialExecutor()
