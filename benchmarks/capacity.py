"""Capacity under a latency SLO: every method's highest Poisson rate, the provable upper bound, the ratios.

Usage: python benchmarks/capacity.py [--scenarios paper-abvt ...] [--slos "per_token<=1.2x" "p95<=1.5x"]
                                     [--methods ...] [--runs 1] [--tol 0.03] [--bins 6] [--json out.json]
Per scenario and SLO it prints one row per method: capacity (mean over runs of the highest rate that held)
with its 95 % interval, the fraction of the bound and of gbp-cr, and what the method looked like just below
and just above its capacity — mean wait, mean service, slot utilisation — which says where it loses
capacity (waiting for memory, slow chains, or the SLO broken even alone). "fluid" is the fluid rate of the
method's placement built at its capacity (docs/capacity.md §6): bound − fluid is what the placement gives up,
fluid − capacity what waiting and dispatch give up. A capacity search simulates each method ~7–11 times with
requests growing with the rate. Measured: the five default scenarios × two SLOs × six methods took 23.5 min
wall on 2 shared cores (paper-gtsce at p95 7.5 min, mostly PETALS); `--bins 12` on the traces adds ~1 min per
bound (docs/capacity.md §2.3, §7). `--slo-pack-dispatch jffc slo-aware` adds SLO-Pack's rows before and
after its length-aware queue in the same run; `--bins 12 --bins-out 48` with it on the traces took 4.3 min
(docs/capacity.md §7.1). The bound holds each length class to its members' mean lengths (§2.6; about 1.5 min
per trace bound at 12 × 48); `--no-moments` reports the corner-only bound of §2.3 instead.
"""

from __future__ import annotations

import argparse
import json
import time

from swarmplan.experiments.capacity import SearchOptions, capacity, parse_slo
from swarmplan.scenario.loader import load_scenario

SCENARIOS = ["paper-abvt", "paper-bellcanada", "paper-gtsce", "trace-azure-code", "trace-azure-conv"]
METHODS = ["petals", "cg-bprr", "gbp-cr", "helix", "parallax", "slo-pack"]


def fmt(x: float) -> str:
    return f"{x:.3g}"


def loss(search) -> str:
    """Where capacity is lost, from the first rate that failed: waiting (memory full) or service (slow chains)."""
    above = search.at(search.hi)
    if search.lo == 0.0:
        return "SLO broken even alone (chains too slow)"
    if above is None:
        return "—"
    if search.stopped_by() == "backlog":
        return f"backlog grew {above.get('backlog_growth', 0.0):.1%} above it (docs/capacity.md §1.2)"
    w, s = above.get("wait_s", 0.0), above.get("service_s", 0.0)
    if w > 0.25 * max(s, 1e-9) or w > 1.0:
        return f"waiting above it (wait {fmt(w)} s, service {fmt(s)} s, slots {above.get('mean_slot_utilisation', 0):.0%})"
    return f"slow chains above it (service {fmt(s)} s, wait {fmt(w)} s)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="+", default=SCENARIOS)
    ap.add_argument("--slos", nargs="+", default=["per_token<=1.2x", "p95<=1.5x"])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=0.03)
    ap.add_argument("--bins", type=int, default=6, help="length classes per axis for the bound (traces; finer = tighter, slower)")
    ap.add_argument("--horizon", type=float, default=20.0, help="arrival span in single-request services (§1.2)")
    ap.add_argument("--bins-out", type=int, default=None, help="length classes along l_out (default: --bins)")
    ap.add_argument("--no-moments", action="store_true", help="the bound's classes as corners only (docs/capacity.md §2.6)")
    ap.add_argument(
        "--slo-pack-dispatch",
        nargs="+",
        default=[None],
        help="SLO-Pack's dispatch option(s) (jffc, slo-aware; docs/capacity.md §5.4); with several, SLO-Pack runs "
        "once per value in the same run (rows slo-pack/VALUE), the other methods with the first",
    )
    ap.add_argument("--json", default=None, help="also write every result here")
    args = ap.parse_args()
    docs = []
    for name in args.scenarios:
        sc, base = load_scenario(name)
        for text in args.slos:
            t0 = time.time()
            runs = []
            for i, dispatch in enumerate(args.slo_pack_dispatch):
                methods = args.methods if i == 0 else ["slo-pack"]
                opts = SearchOptions(
                    rel_tol=args.tol,
                    length_bins=args.bins,
                    length_bins_out=args.bins_out,
                    length_moments=not args.no_moments,
                    slo_pack_dispatch=dispatch,
                    horizon_services=args.horizon,
                )
                runs.append((dispatch, capacity(sc, methods, parse_slo(text), args.runs, args.seed, opts, base)))
            res = runs[0][1]
            ub, (ub_lo, ub_hi) = res.bound()
            gbp = res.capacity("gbp-cr")[0] if "gbp-cr" in res.methods else float("nan")
            certified = all(b["certified"] for b in res.bounds)
            lp = sum(b["lp_rate_per_s"] for b in res.bounds) / len(res.bounds)
            print(
                f"\n## {name}, SLO {text}: upper bound {fmt(ub)} req/s"
                + (f" [{fmt(ub_lo)}, {fmt(ub_hi)}]" if args.runs > 1 else "")
                + f" (LP value {fmt(lp)}{', certified' if certified else ''}); {args.runs} run(s), "
                f"{time.time() - t0:.0f} s"
            )
            print(
                f"{'method':10} {'capacity':>9} {'95 % interval':>18} {'/bound':>7} {'/gbp-cr':>8} {'fluid':>7}  "
                "where it loses capacity"
            )
            for dispatch, r in runs:
                for m in r.methods:
                    label = m if len(runs) == 1 or m != "slo-pack" else f"{m}/{dispatch}"
                    cap, (lo, hi) = r.capacity(m)
                    rel = cap / gbp if gbp > 0 else float("nan")
                    fluid = [s.fluid_per_s for s in r.searches[m] if s.fluid_per_s is not None]
                    fl = fmt(sum(fluid) / len(fluid)) if fluid else "—"
                    design = r.searches[m][0].design
                    print(
                        f"{label:10} {fmt(cap):>9} {'[' + fmt(lo) + ', ' + fmt(hi) + ']':>18} {r.ratio(m):>7.1%} "
                        f"{rel:>8.2f} {fl:>7}  {loss(r.searches[m][0])}" + (f"; design: {design}" if design else "")
                    )
                if dispatch is not runs[0][0]:
                    docs.append({**r.to_json(), "slo_pack_dispatch": dispatch})
            docs.append(res.to_json())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(docs, fh, indent=1)


if __name__ == "__main__":
    main()
