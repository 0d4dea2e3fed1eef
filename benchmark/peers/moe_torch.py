#!/usr/bin/env python3
"""Eager PyTorch implementation of the rosetta model contract (../shared/docs/contract.md).

This is the PyTorch baseline of `make bench-peers`: the same MoE Transformer as the C++
library (embedding, RMSNorm, RoPE with NTK scaling, grouped/multi-query causal attention,
softmax router with renormalised top-k weights and the auxiliary load-balancing loss,
SwiGLU experts, final norm, LM head, cross-entropy; AdamW with global-norm clipping and the
warmup + cosine schedule), written against the contract, in plain eager PyTorch.

Experts run on gathered tokens: the T*k (token, expert) assignments are sorted by expert,
the routed rows are gathered once, each expert runs three matmuls over its contiguous
slice, and the weighted outputs are scatter-added back (as the C++ MoE block does).

Usage:
    python3 moe_torch.py --check ../../../shared/fixtures/tiny_mqa.safetensors [...]

`check_fixture(path)` loads a fixture (safetensors parsed by hand), runs it in float64
and float32 and prints the maximum absolute errors (and relative errors per tensor for
gradients and step-1 parameters). Exit status 0 only if every check passes.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass
class Config:
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 1
    head_dim: int = 16
    experts: int = 4
    top_k: int = 2
    ffn: int = 256
    vocab: int = 1000
    max_seq: int = 512
    rope_base: float = 10000.0
    rope_alpha: float = 1.0
    rms_eps: float = 1e-6
    aux_alpha: float = 0.01

    @staticmethod
    def tiny() -> "Config":
        return Config()

    @staticmethod
    def small() -> "Config":
        return Config(hidden=256, head_dim=64, ffn=1024)

    @staticmethod
    def preset(name: str) -> "Config":
        presets = {"tiny": Config.tiny, "small": Config.small}
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; allowed: {sorted(presets)}")
        return presets[name]()

    def validate(self) -> "Config":
        for field in ("hidden", "layers", "heads", "kv_heads", "head_dim", "experts",
                      "top_k", "ffn", "vocab", "max_seq"):
            if getattr(self, field) <= 0:
                raise ValueError(f"config.{field} = {getattr(self, field)}: must be positive")
        if self.heads * self.head_dim != self.hidden:
            raise ValueError(f"heads*head_dim = {self.heads}*{self.head_dim} != hidden {self.hidden}")
        if self.heads % self.kv_heads != 0:
            raise ValueError(f"heads {self.heads} not divisible by kv_heads {self.kv_heads}")
        if not 1 <= self.top_k <= self.experts:
            raise ValueError(f"top_k {self.top_k}: allowed 1..{self.experts}")
        if self.head_dim % 2 != 0:
            raise ValueError(f"head_dim {self.head_dim}: must be even (RoPE pairs)")
        return self

    def param_count(self) -> int:
        H, qd, kvd = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        per_layer = 2 * H + H * qd + 2 * H * kvd + qd * H + self.experts * H \
            + self.experts * 3 * H * self.ffn
        return self.vocab * H + self.layers * per_layer + H + self.vocab * H


@dataclass
class TrainConfig:
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    clip: float = 1.0
    warmup: int = 1000
    total_steps: int = 100000


def lr_at(tc: TrainConfig, step: int) -> float:
    """Linear warmup to lr, then cosine down to 0.1*lr at total_steps, clamped after."""
    if tc.warmup > 0 and step <= tc.warmup:
        return tc.lr * step / tc.warmup
    span = tc.total_steps - tc.warmup
    progress = 1.0 if span <= 0 else min(max((step - tc.warmup) / span, 0.0), 1.0)
    return 0.1 * tc.lr + 0.9 * tc.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------


class Linear(nn.Module):
    """y = x W^T, W stored [out, in], no bias (weights initialised by the model)."""

    def __init__(self, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fan_out, fan_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


def rms_norm(x: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    """y = x / sqrt(mean(x^2) + eps) * g over the last dimension."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


def rope_tables(cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of theta(pos, i) = pos * base'^(-2i/head_dim), float64, [max_seq, head_dim/2]."""
    hd = cfg.head_dim
    base = cfg.rope_base
    if cfg.rope_alpha > 1.0:  # NTK-aware scaling
        base = base * cfg.rope_alpha ** (hd / (hd - 2))
    i = torch.arange(hd // 2, dtype=torch.float64)
    inv_freq = base ** (-2.0 * i / hd)
    pos = torch.arange(cfg.max_seq, dtype=torch.float64)
    theta = pos[:, None] * inv_freq[None, :]
    return torch.cos(theta), torch.sin(theta)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, S, heads, hd]; rotate interleaved pairs (2i, 2i+1) by theta(pos, i).
    cos/sin [S, hd/2]."""
    pairs = x.unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    c = cos[:, None, :]
    s = sin[:, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        H, qd, kvd = cfg.hidden, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
        self.wq = Linear(H, qd)
        self.wk = Linear(H, kvd)
        self.wv = Linear(H, kvd)
        self.wo = Linear(qd, H)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        B, S, _ = x.shape
        nh, nkv, hd = cfg.heads, cfg.kv_heads, cfg.head_dim
        group = nh // nkv
        q = apply_rope(self.wq(x).view(B, S, nh, hd), cos, sin)
        k = apply_rope(self.wk(x).view(B, S, nkv, hd), cos, sin)
        v = self.wv(x).view(B, S, nkv, hd)
        # query head h = kv*group + j uses KV head kv = h / group (broadcast, no copy)
        q = q.view(B, S, nkv, group, hd).permute(0, 2, 3, 1, 4)   # [B, nkv, g, S, hd]
        k = k.permute(0, 2, 1, 3).unsqueeze(2)                    # [B, nkv, 1, S, hd]
        v = v.permute(0, 2, 1, 3).unsqueeze(2)                    # [B, nkv, 1, S, hd]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)  # [B, nkv, g, S, S]
        scores = scores.masked_fill(mask, float("-inf"))          # key > query excluded
        p = torch.softmax(scores, dim=-1)                         # max-subtracted
        o = torch.matmul(p, v)                                    # [B, nkv, g, S, hd]
        o = o.permute(0, 3, 1, 2, 4).reshape(B, S, nh * hd)       # heads concatenated
        return self.wo(o)


class Expert(nn.Module):
    """SwiGLU(x) = (silu(x W1^T) * (x W3^T)) W2^T."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.w1 = Linear(cfg.hidden, cfg.ffn)
        self.w3 = Linear(cfg.hidden, cfg.ffn)
        self.w2 = Linear(cfg.ffn, cfg.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoE(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.gate = Linear(cfg.hidden, cfg.experts)
        self.experts = nn.ModuleList(Expert(cfg) for _ in range(cfg.experts))
        self.last_counts: list[int] = [0] * cfg.experts

    def forward(self, x: torch.Tensor, want_aux: bool):
        cfg = self.cfg
        B, S, H = x.shape
        T, E, K = B * S, cfg.experts, cfg.top_k
        xf = x.reshape(T, H)
        probs = torch.softmax(self.gate(xf), dim=-1)              # over all experts
        # top-k by probability; stable descending sort: ties -> lowest expert index
        _, order = torch.sort(probs, dim=-1, descending=True, stable=True)
        idx = order[:, :K]                                        # [T, K]
        top_p = probs.gather(1, idx)
        w = top_p / top_p.sum(dim=-1, keepdim=True)               # renormalised
        # gather: sort the T*K assignments by expert (stable: token order within expert)
        flat = idx.reshape(-1)
        _, by_expert = torch.sort(flat, stable=True)
        counts = torch.bincount(flat, minlength=E).tolist()
        self.last_counts = counts
        tok = torch.div(by_expert, K, rounding_mode="floor")
        xs = xf.index_select(0, tok)                              # [T*K, H] routed rows
        ys = []
        start = 0
        for e, n in enumerate(counts):
            if n:
                ys.append(self.experts[e](xs[start:start + n]))  # one matmul per weight
            start += n
        y = torch.cat(ys, dim=0) * w.reshape(-1).index_select(0, by_expert).unsqueeze(1)
        out = torch.zeros_like(xf).index_add(0, tok, y).view(B, S, H)
        aux = None
        if want_aux:
            f = torch.tensor(counts, dtype=x.dtype) / (T * K)     # constant in backward
            P = probs.mean(dim=0)
            aux = cfg.aux_alpha * E * (f * P).sum()
        return out, aux


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.block_sparse_moe = MoE(cfg)

    def forward(self, x, cos, sin, mask, want_aux):
        h = x + self.attention(self.attention_norm(x), cos, sin, mask)
        m, aux = self.block_sparse_moe(self.ffn_norm(h), want_aux)
        return h + m, aux


class MoETransformer(nn.Module):
    """Parameter names follow the fixture/checkpoint convention (LLaMA/Mixtral)."""

    def __init__(self, cfg: Config, seed: int = 42, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cfg = cfg.validate()
        self.tok_embeddings = nn.Parameter(torch.empty(cfg.vocab, cfg.hidden))
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.output = Linear(cfg.hidden, cfg.vocab)
        self._rope64 = rope_tables(cfg)
        self._rope: dict = {}
        self._mask: dict = {}
        self.init_weights(seed)
        self.to(dtype)

    # `tok_embeddings` is a bare Parameter; expose it under the fixture's name too
    def named_weights(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, p in self.named_parameters():
            out["tok_embeddings.weight" if name == "tok_embeddings" else name] = p
        return out

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """Linear N(0, 2/fan_in), embedding N(0, 2/H), gains 1; each tensor its own stream."""
        for i, (name, p) in enumerate(self.named_weights().items()):
            gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name == "tok_embeddings.weight":
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64)
                        * math.sqrt(2.0 / self.cfg.hidden))
            else:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64)
                        * math.sqrt(2.0 / p.shape[1]))

    def _tables(self, S: int, dtype: torch.dtype):
        if dtype not in self._rope:
            cos, sin = self._rope64
            self._rope[dtype] = (cos.to(dtype), sin.to(dtype))
        if S not in self._mask:
            self._mask[S] = torch.ones(S, S, dtype=torch.bool).triu(1)
        cos, sin = self._rope[dtype]
        return cos[:S], sin[:S], self._mask[S]

    def forward(self, tokens: torch.Tensor, want_aux: bool = False):
        """tokens [B, S] int64 -> (logits [B, S, V], summed aux loss or None)."""
        B, S = tokens.shape
        if B == 0 or S == 0:
            raise ValueError(f"empty batch: shape {tuple(tokens.shape)}")
        if S > self.cfg.max_seq:
            raise ValueError(f"sequence length {S} > max_seq {self.cfg.max_seq}")
        x = F.embedding(tokens, self.tok_embeddings)
        cos, sin, mask = self._tables(S, x.dtype)
        aux_total = None
        for layer in self.layers:
            x, aux = layer(x, cos, sin, mask, want_aux)
            if want_aux:
                aux_total = aux if aux_total is None else aux_total + aux
        return self.output(self.norm(x)), aux_total

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor):
        """(logits, ce, aux, total): mean cross-entropy over B*S (log-sum-exp) + summed aux."""
        logits, aux = self.forward(tokens, want_aux=True)
        ce = F.cross_entropy(logits.reshape(-1, self.cfg.vocab), targets.reshape(-1))
        return logits, ce, aux, ce + aux

    def expert_counts(self) -> list[list[int]]:
        """Per layer, the number of top-k slots routed to each expert in the last forward."""
        return [list(layer.block_sparse_moe.last_counts) for layer in self.layers]


# --------------------------------------------------------------------------------------
# FLOP count (2*m*n*k of every product executed, with the actual routing)
# --------------------------------------------------------------------------------------


def forward_flops(cfg: Config, batch: int, seq: int, counts: list[list[int]]) -> int:
    T, H = batch * seq, cfg.hidden
    qd, kvd = cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    total = 0
    for layer_counts in counts:
        total += 2 * T * H * qd + 2 * 2 * T * H * kvd + 2 * T * qd * H     # q, k, v, o
        total += 2 * 2 * batch * cfg.heads * seq * seq * cfg.head_dim      # q k^T, P v (full S x S)
        total += 2 * T * H * cfg.experts                                   # router
        total += sum(3 * 2 * n * H * cfg.ffn for n in layer_counts)        # w1, w3, w2 per routed row
    total += 2 * T * H * cfg.vocab                                         # lm head
    return total


def train_flops(cfg: Config, batch: int, seq: int, counts: list[list[int]]) -> int:
    """Forward + backward: every product y = a b has two backward products (da, db) of
    the same size, so a train step executes 3x the forward products."""
    return 3 * forward_flops(cfg, batch, seq, counts)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


class Trainer:
    def __init__(self, model: MoETransformer, tc: TrainConfig | None = None,
                 schedule: bool = True):
        self.model = model
        self.tc = tc or TrainConfig()
        self.schedule = schedule
        self.params = list(model.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=self.tc.lr,
                                     betas=(self.tc.beta1, self.tc.beta2), eps=self.tc.eps,
                                     weight_decay=self.tc.weight_decay)
        self.step_count = 0

    def clip(self) -> float:
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
        if self.tc.clip > 0 and norm > self.tc.clip:
            scale = self.tc.clip / (norm + 1e-6)
            for g in grads:
                g.mul_(scale)
        return norm

    def train_step(self, tokens: torch.Tensor, targets: torch.Tensor) -> dict:
        self.opt.zero_grad(set_to_none=True)
        logits, ce, aux, total = self.model.loss(tokens, targets)
        total_value = total.item()
        if not math.isfinite(total_value):
            raise FloatingPointError(f"non-finite loss {total_value} at step {self.step_count + 1}")
        total.backward()
        norm = self.clip()
        self.step_count += 1
        lr = lr_at(self.tc, self.step_count) if self.schedule else self.tc.lr
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        return {"logits": logits.detach(), "ce": ce.item(), "aux": aux.item(),
                "total": total_value, "grad_norm": norm, "lr": lr}


# --------------------------------------------------------------------------------------
# Safetensors (parsed by hand) and the fixture check
# --------------------------------------------------------------------------------------

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}


def load_safetensors(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """8-byte little-endian header length, JSON header, raw little-endian C-order data."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} exceeds file size {len(blob)}")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        dtype = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        numel = math.prod(info["shape"])
        if end - begin != numel * torch.tensor([], dtype=dtype).element_size():
            raise ValueError(f"{path}: tensor {name}: {end - begin} bytes for shape {info['shape']}")
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=dtype) if numel else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"])
    return meta, tensors


def model_from_fixture(path: str, dtype: torch.dtype):
    meta, t = load_safetensors(path)
    cfg = Config(**json.loads(meta["config"]))
    train = json.loads(meta["train"])
    model = MoETransformer(cfg, seed=0, dtype=dtype)
    weights = model.named_weights()
    with torch.no_grad():
        for name, p in weights.items():
            src = t["params." + name]
            if tuple(src.shape) != tuple(p.shape):
                raise ValueError(f"{name}: fixture shape {tuple(src.shape)} != model {tuple(p.shape)}")
            p.copy_(src.to(dtype))
    missing = {k[len("params."):] for k in t if k.startswith("params.")} - set(weights)
    if missing:
        raise ValueError(f"fixture parameters the model does not have: {sorted(missing)}")
    return model, cfg, train, meta, t


def _maxabs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    d = (a.double() - b.double()).norm().item()
    n = b.double().norm().item()
    return d / n if n > 0 else d


def greedy(model: MoETransformer, prompt: torch.Tensor, max_len: int) -> list[int]:
    """Greedy decoding by full recomputation; argmax returns the first (lowest) max index."""
    seq = prompt.tolist()
    with torch.no_grad():
        while len(seq) < max_len:
            logits, _ = model(torch.tensor([seq], dtype=torch.int64))
            seq.append(int(torch.argmax(logits[0, -1]).item()))
    return seq


def check_fixture(path: str, verbose: bool = True) -> bool:
    """Compare this implementation with a fixture in float64 (tight) and float32 (honest
    tolerances of ../shared/fixtures/README.md). Prints the errors; returns pass/fail."""
    ok = True
    lines = []

    def report(name, err, tol):
        nonlocal ok
        passed = err <= tol
        ok &= passed
        lines.append(f"  {name:<34s} {err:10.3e}  (tol {tol:.0e})  {'ok' if passed else 'FAIL'}")

    for dtype, tight in ((torch.float64, True), (torch.float32, False)):
        model, cfg, train, meta, t = model_from_fixture(path, dtype)
        tokens, targets = t["input.tokens"], t["input.targets"]
        lines.append(f"{path} [{str(dtype).replace('torch.', '')}]")
        # forward and losses
        logits, ce, aux, total = model.loss(tokens, targets)
        if tight:
            report("logits max|abs err|", _maxabs(logits, t["expect.logits"]), 1e-9)
            for name, v in (("ce", ce), ("aux", aux), ("total", total)):
                report(f"loss.{name} |abs err|", _maxabs(v, t[f"expect.loss.{name}"]), 1e-10)
        else:
            report("logits rel err", _rel(logits, t["expect.logits"]), 1e-4)
            for name, v in (("ce", ce), ("aux", aux), ("total", total)):
                report(f"loss.{name} rel err", _rel(v, t[f"expect.loss.{name}"]), 1e-4)
        # gradients (before clipping)
        total.backward()
        weights = model.named_weights()
        worst_g = max(_rel(p.grad, t["expect.grad." + n]) for n, p in weights.items())
        worst_ga = max(_maxabs(p.grad, t["expect.grad." + n]) for n, p in weights.items())
        norm = torch.sqrt(sum(p.grad.double().pow(2).sum() for p in weights.values()))
        report("worst gradient rel err", worst_g, 1e-9 if tight else 1e-3)
        if tight:
            report("worst gradient max|abs err|", worst_ga, 1e-10)
        report("grad_norm rel err", _rel(norm, t["expect.grad_norm"]), 1e-9 if tight else 1e-3)
        # one clipped AdamW step at constant lr
        tc = TrainConfig(**{k: train[k] for k in ("lr", "beta1", "beta2", "eps",
                                                  "weight_decay", "clip", "warmup",
                                                  "total_steps")})
        trainer = Trainer(model, tc, schedule=False)
        trainer.clip()
        trainer.opt.step()
        worst_s = max(_rel(p.detach(), t["expect.step1." + n]) for n, p in weights.items())
        worst_sa = max(_maxabs(p.detach(), t["expect.step1." + n]) for n, p in weights.items())
        report("worst step-1 param rel err", worst_s, 1e-9 if tight else 1e-3)
        if tight:
            report("worst step-1 param max|abs err|", worst_sa, 1e-10)
        # loss trajectory with the warmup + cosine schedule, from the initial weights
        model, *_ = model_from_fixture(path, dtype)
        trainer = Trainer(model, tc, schedule=True)
        losses = torch.tensor([trainer.train_step(tokens, targets)["total"]
                               for _ in range(train["train_steps"])], dtype=torch.float64)
        if tight:
            report("train_losses max|abs err|", _maxabs(losses, t["expect.train_losses"]), 1e-9)
        else:
            report("train_losses rel err", _rel(losses, t["expect.train_losses"]), 1e-3)
        # greedy decoding (full recomputation)
        model, *_ = model_from_fixture(path, dtype)
        g = json.loads(meta["greedy"])
        got = greedy(model, t["input.prompt"], g["max_len"])
        mismatches = sum(a != b for a, b in zip(got, t["expect.greedy"].tolist()))
        report("greedy token mismatches", float(mismatches), 0.0)
    if verbose:
        print("\n".join(lines))
        print(f"{path}: {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", nargs="+", metavar="FIXTURE", required=True,
                    help="safetensors fixtures to compare against")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = [check_fixture(p) for p in args.check]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
