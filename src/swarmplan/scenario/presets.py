"""Built-in LLM and GPU presets (docs/model.md §2, §3.1 and §12).

Model presets carry the architecture numbers from which block and KV sizes follow (perf.memory does the
arithmetic). GPU presets carry the paper's fitted times for A100 80GB and MIG 1g.10gb (Sun et al. 2025,
BPRR §3.1) and, for other cards, *estimates* derived from public specs by the rules written beside them.
"""

from __future__ import annotations

# docs/model.md §2.1 — architecture numbers; parameters per block from the HF configs.
MODEL_PRESETS: dict[str, dict] = {
    "bloom-176b": dict(
        n_blocks=70,
        params_per_block=2_466_437_120,
        d_model=14336,
        kv_groups=1,
        quant="nf4",
        dtype="bfloat16",
        note="BLOOM-176B in NF4 as in Sun et al. 2025 (1.3234 GB per block)",
    ),
    "llama-2-70b": dict(
        n_blocks=80,
        params_per_block=855_654_400,
        d_model=8192,
        kv_groups=8,
        quant="nf4",
        dtype="bfloat16",
        note="Llama-2-70B, 64 heads / 8 KV heads (GQA 8)",
    ),
    "llama-2-7b": dict(
        # 4·4096² attention + 3·4096·11008 MLP + 2·4096 norms
        n_blocks=32,
        params_per_block=202_383_360,
        d_model=4096,
        kv_groups=1,
        quant="none",
        dtype="float16",
        note="Llama-2-7B in fp16",
    ),
    "llama-3-8b": dict(
        # 2·4096² (q,o) + 2·4096·1024 (k,v) + 3·4096·14336 MLP + 2·4096 norms
        n_blocks=32,
        params_per_block=218_112_000,
        d_model=4096,
        kv_groups=4,
        quant="none",
        dtype="bfloat16",
        note="Llama-3-8B, 32 heads / 8 KV heads (GQA 4)",
    ),
}

# The model the paper's fitted per-block times were measured on; other models are scaled (§3.1).
FIT_REFERENCE_MODEL = "bloom-176b"

# docs/model.md §12 — the A100 reference used by every estimate: paper hardware table (BPRR §10.3).
_A100 = dict(tflops=312.0, bandwidth_gb_per_ms=2.039)
_A100_TAU_MS = 3.2197
_A100_PREFILL = (0.0743, 32.99)  # ms per input token per block, ms per block
_A100_RPS = dict(inference_rps=369.2226095704935, forward_rps=20829.38146541331, network_rps=3020.3700586885343)
GIB_IN_GB = 2**30 / 1e9


def _estimate(tflops: float, bandwidth_gb_per_ms: float, memory_gb: float, note: str) -> dict:
    """docs/model.md §12 — estimate a card from the A100 fit: decode is memory-bound (scale τ by the
    bandwidth ratio), prefill is compute-bound (scale the prefill fit by the TFLOPS ratio)."""
    bw = _A100["bandwidth_gb_per_ms"] / bandwidth_gb_per_ms
    fl = _A100["tflops"] / tflops
    return dict(
        memory_gb=round(memory_gb, 4),
        decode_ms_per_block=round(_A100_TAU_MS * bw, 4),
        prefill_ms_per_token_per_block=round(_A100_PREFILL[0] * fl, 5),
        prefill_ms_per_block=round(_A100_PREFILL[1] * fl, 4),
        max_blocks=None,
        tflops=tflops,
        bandwidth_gb_per_ms=bandwidth_gb_per_ms,
        inference_rps=_A100_RPS["inference_rps"] / bw,
        forward_rps=_A100_RPS["forward_rps"] / fl,
        network_rps=_A100_RPS["network_rps"],
        estimate=True,
        note=note,
    )


GPU_PRESETS: dict[str, dict] = {
    # docs/model.md §3.1 — the paper's fits (Sun et al. 2025; BPRR §3.1), throughput probe throughput_v5.json.
    "a100-80gb": dict(
        memory_gb=86.13,
        decode_ms_per_block=_A100_TAU_MS,
        prefill_ms_per_token_per_block=_A100_PREFILL[0],
        prefill_ms_per_block=_A100_PREFILL[1],
        max_blocks=None,
        estimate=False,
        **_A100,
        **_A100_RPS,
        note="NVIDIA A100 80GB PCIe: the paper's fitted times (Sun et al. 2025)",
    ),
    "mig-1g-10gb": dict(
        memory_gb=9.1,
        decode_ms_per_block=16.2488,
        prefill_ms_per_token_per_block=0.1041,
        prefill_ms_per_block=206.3547,
        max_blocks=4,
        estimate=False,
        tflops=39.0,
        bandwidth_gb_per_ms=0.255,
        inference_rps=61.55298253944563,
        forward_rps=2757.7243405599083,
        network_rps=3138.1039624670034,
        note="A100 MIG 1g.10gb slice: the paper's fitted times and its 4-block clamp (Sun et al. 2025)",
    ),
    # Estimates (docs/model.md §12). Memory: nominal GiB written in GB (1 GiB = 1.0737 GB), as the
    # paper's 86.13 GB for an 80 GB card; MIG slices use the follow-up paper's 40 / 20 GB.
    "h100-80gb": _estimate(989.0, 3.35, 86.13, "NVIDIA H100 80GB SXM: ESTIMATE from specs (989 TFLOPS bf16, 3.35 TB/s)"),
    "l4": _estimate(121.0, 0.300, 24 * GIB_IN_GB, "NVIDIA L4 24GB: ESTIMATE from specs (121 TFLOPS bf16, 300 GB/s)"),
    "rtx-4090": _estimate(165.2, 1.008, 24 * GIB_IN_GB, "NVIDIA RTX 4090 24GB: ESTIMATE from specs (165 TFLOPS bf16, 1008 GB/s)"),
    "mig-2g-20gb": _estimate(80.0, 0.51, 20.0, "A100 MIG 2g.20gb: ESTIMATE (80 TFLOPS, 0.51 GB/ms, as in Sun/He/Hou 2026)"),
    "mig-3g-40gb": _estimate(120.0, 1.02, 40.0, "A100 MIG 3g.40gb: ESTIMATE (120 TFLOPS, 1.02 GB/ms, as in Sun/He/Hou 2026)"),
}
