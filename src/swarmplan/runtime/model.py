"""A seeded-random LLaMA split into stages (docs/runtime.md §1).

Nothing is downloaded: weights are drawn from a seed per tensor (so a server can build only its own span and
still get exactly the weights the single-process reference has). A stage holding blocks a..e (1-based,
inclusive) is a ``LlamaModel`` with e − a + 1 layers numbered from 0 — transformers' cache indexes layers by
``layer_idx``, so keeping the global numbers would put a span's keys at the wrong cache positions — whose
final norm is the identity (only the client's head applies it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np

from swarmplan.errors import SwarmplanError

# Runtime presets: small LLaMA shapes for this machine (docs/runtime.md §1).
RUNTIME_PRESETS: dict[str, dict] = {
    "llama-tiny": dict(n_layers=4, hidden=64, intermediate=176, heads=4, kv_heads=2),
    "llama-small": dict(n_layers=8, hidden=256, intermediate=688, heads=4, kv_heads=4),
    "llama-medium": dict(n_layers=16, hidden=512, intermediate=1376, heads=8, kv_heads=8),
    "llama-large": dict(n_layers=24, hidden=1024, intermediate=2752, heads=16, kv_heads=16),
}
DEFAULT_VOCAB = 512
BYTES_FP32 = 4


@dataclass(frozen=True)
class LlamaArch:
    """The architecture numbers and the weight seed of a runtime model."""

    n_layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int = DEFAULT_VOCAB
    seed: int = 0

    @property
    def params_per_block(self) -> int:
        """docs/runtime.md §1 — q, o: h²; k, v: h·h_kv; MLP: 3·h·I; two RMS norms: 2h."""
        h, hk = self.hidden, self.hidden // self.heads * self.kv_heads
        return 2 * h * h + 2 * h * hk + 3 * h * self.intermediate + 2 * h

    @property
    def kv_groups(self) -> int:
        return self.heads // self.kv_heads

    def model_spec(self) -> dict:
        """The scenario ``model:`` fields that describe this model to the planner (fp32, unquantised)."""
        return dict(
            n_blocks=self.n_layers,
            params_per_block=self.params_per_block,
            d_model=self.hidden,
            kv_groups=self.kv_groups,
            quant="none",
            dtype="float32",
        )

    def to_dict(self) -> dict:
        return asdict(self)


def preset_arch(name: str, seed: int = 0) -> LlamaArch:
    if name not in RUNTIME_PRESETS:
        raise SwarmplanError("--model", f"unknown runtime model {name!r}", f"use one of {', '.join(RUNTIME_PRESETS)}")
    return LlamaArch(**RUNTIME_PRESETS[name], seed=seed)


def arch_from_model_params(model, seed: int = 0, vocab: int = DEFAULT_VOCAB) -> LlamaArch:
    """docs/runtime.md §1 — the LLaMA whose blocks have the scenario model's L, d_model, KV groups and
    parameters per block: head size 64 (or d_model/4 when smaller), I = (P − 2h² − 2h·h_kv − 2h) / 3h."""
    h = model.d_model
    if not h or not model.params_per_block:
        raise SwarmplanError(
            "model",
            f"{model.name} gives no d_model/params_per_block, so no LLaMA can be built",
            "give model.d_model and model.params_per_block (docs/runtime.md §1)",
        )
    head_dim = 64 if h % 64 == 0 and h >= 256 else max(h // 4, 1)
    heads = h // head_dim
    if heads % model.kv_groups:
        raise SwarmplanError(
            "model.kv_groups",
            f"{heads} heads cannot be split into groups of {model.kv_groups}",
            "use kv_groups dividing d_model/64",
        )
    hk = h // model.kv_groups
    rest = model.params_per_block - 2 * h * h - 2 * h * hk - 2 * h
    if rest <= 0 or rest % (3 * h):
        raise SwarmplanError(
            "model.params_per_block",
            f"{model.params_per_block} is not a LLaMA block of width {h}",
            "use 2h² + 2h·h/kv_groups + 3h·I + 2h for an integer MLP width I",
        )
    return LlamaArch(model.n_blocks, h, rest // (3 * h), heads, heads // model.kv_groups, vocab, seed)


def check_fits_memory(arch: LlamaArch, processes: int, available_bytes: int | None = None) -> None:
    """Refuse a model whose weights (every process builds its own span; the reference builds all) exceed
    half the machine's free memory — better one clear line than the OOM killer."""
    if available_bytes is None:
        try:
            import psutil  # type: ignore

            available_bytes = psutil.virtual_memory().available
        except ImportError:
            available_bytes = _meminfo_available()
    need = arch.params_per_block * arch.n_layers * BYTES_FP32 * 2 + arch.vocab * arch.hidden * BYTES_FP32 * 2 * processes
    if available_bytes and need > available_bytes / 2:
        raise SwarmplanError(
            "model",
            f"the model needs about {need / 1e9:.2f} GB but only {available_bytes / 1e9:.2f} GB are free",
            "use a smaller model (fewer or narrower blocks)",
        )


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _seed_for(seed: int, what: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{what}".encode()).digest()[:8], "little") & (2**63 - 1)


def _config(arch: LlamaArch, n_layers: int):
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        vocab_size=arch.vocab,
        hidden_size=arch.hidden,
        intermediate_size=arch.intermediate,
        num_hidden_layers=n_layers,
        num_attention_heads=arch.heads,
        num_key_value_heads=arch.kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        pad_token_id=None,
        bos_token_id=None,
        eos_token_id=None,
    )
    cfg._attn_implementation = "sdpa"
    return cfg


def _fill(module, seed: int, what: str) -> None:
    """Seeded weights: each Linear ~ N(0, 1/fan_in) (activations keep unit scale, so logits are well apart and
    greedy choices are not near-ties), embeddings ~ N(0, 1), norms 1."""
    import torch

    for name, p in sorted(module.named_parameters()):
        g = torch.Generator().manual_seed(_seed_for(seed, f"{what}.{name}"))
        with torch.no_grad():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.fill_(1.0)
            elif p.dim() == 2 and "embed" not in name:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            else:
                p.copy_(torch.randn(p.shape, generator=g))


def build_stage(arch: LlamaArch, first_block: int, n_blocks: int, device: str = "cpu"):
    """Blocks first_block .. first_block + n_blocks − 1 (1-based) as a LlamaModel with layers renumbered from 0."""
    import torch
    from transformers import LlamaModel

    torch.manual_seed(0)
    stage = LlamaModel(_config(arch, n_blocks))
    stage.embed_tokens = torch.nn.Embedding(1, arch.hidden)  # unused: stages take hidden states
    stage.norm = torch.nn.Identity()  # the head's norm runs once, at the client
    for i, layer in enumerate(stage.layers):
        _fill(layer, arch.seed, f"layer{first_block + i}")
    return stage.to(device).eval()


class Head:
    """The client's ends of the model: token embedding in, final norm and LM head out."""

    def __init__(self, arch: LlamaArch, device: str = "cpu"):
        import torch
        from transformers.models.llama.modeling_llama import LlamaRMSNorm

        cfg = _config(arch, 1)
        self.embed = torch.nn.Embedding(arch.vocab, arch.hidden)
        self.norm = LlamaRMSNorm(arch.hidden, eps=cfg.rms_norm_eps)
        self.lm_head = torch.nn.Linear(arch.hidden, arch.vocab, bias=False)
        _fill(self.embed, arch.seed, "embed")
        _fill(self.norm, arch.seed, "norm")
        _fill(self.lm_head, arch.seed, "lm_head")
        for m in (self.embed, self.norm, self.lm_head):
            m.to(device).eval().requires_grad_(False)  # no autograd state, so async tasks need no grad-mode context
        self.device = device
        self.torch = torch

    def embed_ids(self, ids):
        import torch

        return self.embed(torch.as_tensor(ids, device=self.device).view(1, -1))

    def next_token(self, hidden) -> int:
        """Greedy choice from the last position's hidden state (a tensor, or an array from the wire)."""
        torch = self.torch
        if not isinstance(hidden, torch.Tensor):
            hidden = torch.from_numpy(np.array(hidden, dtype=np.float32))
        hidden = hidden.to(self.device)
        return int(self.lm_head(self.norm(hidden[:, -1:, :])).argmax(-1).item())


def build_reference(arch: LlamaArch, device: str = "cpu"):
    """The whole model as one LlamaForCausalLM with the same seeded weights (for generate() and tests)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(_config(arch, arch.n_layers))
    for i, layer in enumerate(model.model.layers):
        _fill(layer, arch.seed, f"layer{i + 1}")
    _fill(model.model.embed_tokens, arch.seed, "embed")
    _fill(model.model.norm, arch.seed, "norm")
    _fill(model.lm_head, arch.seed, "lm_head")
    return model.to(device).eval()


def reference_generate(model, prompt: list[int], new_tokens: int) -> list[int]:
    """Greedy single-process generation: the tokens a split run must reproduce."""
    import torch

    ids = torch.tensor([prompt], device=model.device)
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            do_sample=False,
            min_new_tokens=new_tokens,
            pad_token_id=0,
        )
    return out[0, len(prompt) :].tolist()


def run_stage(stage, hidden, cache, start_pos: int):
    """One forward of a stage on new positions start_pos.. with its KV cache. The cache goes fourth by position:
    transformers 4.x calls it ``past_key_values``, 5.x ``cache``."""
    import torch

    pos = torch.arange(start_pos, start_pos + hidden.shape[1], device=hidden.device).unsqueeze(0)
    out = stage(None, None, pos, cache, inputs_embeds=hidden, use_cache=True)
    return out.last_hidden_state


class Stage:
    """A server's span; a session may enter part-way (a chain hop processes the last n of the m blocks).

    For a session entering at local block ``skip`` the layers skip.. are renumbered 0.. for that forward call
    (the session's cache holds exactly its n layers). Forwards run one at a time (a server's event loop is
    single-threaded), so the renumbering never races.
    """

    def __init__(self, arch: LlamaArch, first_block: int, n_blocks: int, device: str = "cpu"):
        import torch

        self.model = build_stage(arch, first_block, n_blocks, device)
        self.layers = list(self.model.layers)
        self.first_block, self.n_blocks, self.device = first_block, n_blocks, device
        self._torch = torch

    def forward(self, hidden, cache, start_pos: int, skip: int = 0):
        torch = self._torch
        use = self.layers[skip:]
        for i, layer in enumerate(use):
            layer.self_attn.layer_idx = i
        self.model.layers = torch.nn.ModuleList(use)
        self.model.config.num_hidden_layers = len(use)
        try:
            with torch.inference_mode():
                return run_stage(self.model, hidden, cache, start_pos)
        finally:
            self.model.layers = torch.nn.ModuleList(self.layers)
            self.model.config.num_hidden_layers = len(self.layers)


def new_cache():
    from transformers import DynamicCache

    return DynamicCache()


def require_runtime() -> None:
    """One clear line instead of an ImportError when the optional extra is missing."""
    import importlib.util

    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise SwarmplanError(
            "runtime", f"{' and '.join(missing)} not installed (the runtime's optional extra)", 'pip install -e ".[runtime]"'
        )


def check_device(device: str) -> None:
    import torch

    if device == "cpu":
        return
    if device.startswith("cuda") and torch.cuda.is_available():
        return
    raise SwarmplanError("--device", f"device {device!r} is not available here", "use --device cpu")
