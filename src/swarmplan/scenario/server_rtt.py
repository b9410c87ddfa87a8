"""Server-to-server RTTs kept per node (docs/model.md §11.2).

Servers that share a topology node (a PoP) share its RTTs, so a swarm of 10⁴ servers on a few hundred nodes
needs the node × node matrix and each server's node, not a 10⁴ × 10⁴ matrix (800 MB, seconds to build). The
value for servers i, j is ``node_ms[node[i], node[j]]``; indexing a ``ServerRtt`` like the dense matrix gives
exactly that, and ``np.asarray`` builds the dense matrix when a caller really wants it (small swarms).
A swarm whose servers each have their own row (netem links, servers listed with explicit RTTs) uses the
identity map (``ServerRtt.dense``): the same memory as the plain matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ServerRtt:
    node: np.ndarray  # (servers,) int: each server's row/column in node_ms
    node_ms: np.ndarray  # (nodes, nodes) raw RTT in ms; NaN where unknown; zero diagonal

    def __post_init__(self) -> None:
        node = np.asarray(self.node, dtype=np.int64)
        node_ms = np.asarray(self.node_ms, dtype=float)
        if node_ms.ndim != 2 or node_ms.shape[0] != node_ms.shape[1]:
            raise ValueError(f"node_ms must be square, not {node_ms.shape}")
        if len(node) and (node.min() < 0 or node.max() >= node_ms.shape[0]):
            raise ValueError("a server's node is outside node_ms")
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "node_ms", node_ms)

    @classmethod
    def dense(cls, matrix) -> "ServerRtt":
        """One row per server: the plain (servers × servers) matrix."""
        matrix = np.asarray(matrix, dtype=float)
        return cls(np.arange(matrix.shape[0], dtype=np.int64), matrix)

    @property
    def n_servers(self) -> int:
        return len(self.node)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_servers, self.n_servers)

    def __len__(self) -> int:
        return self.n_servers

    def __getitem__(self, key):
        """``rtt[i, j]`` for integer (arrays of) server indices, as on the dense matrix; any other index
        (masks, slices) is applied to the dense matrix."""
        if isinstance(key, tuple) and len(key) == 2 and all(_is_int_index(k) for k in key):
            i, j = key
            return self.node_ms[self.node[i], self.node[j]]
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        out = self.node_ms[np.ix_(self.node, self.node)]
        return out if dtype is None else out.astype(dtype)

    def map_nodes(self, fn) -> "ServerRtt":
        """The same servers with ``fn`` applied elementwise to the node matrix (equal to applying it to the
        dense matrix, entry by entry)."""
        return ServerRtt(self.node, fn(self.node_ms))

    def unknown_pairs(self) -> int:
        """Server pairs i < j with no RTT (NaN), counted per node: Σ_{v,u} c_v c_u [NaN(v,u)] over ordered
        pairs, less the i = j terms, halved."""
        count = np.bincount(self.node, minlength=self.node_ms.shape[0]).astype(np.int64)
        nan = np.isnan(self.node_ms).astype(np.int64)
        ordered = int(count @ nan @ count) - int(count @ np.diag(nan))
        return ordered // 2


def _is_int_index(k) -> bool:
    if isinstance(k, (int, np.integer)):
        return True
    arr = np.asarray(k)
    return arr.dtype.kind in "iu"
