#!/usr/bin/env python3
"""Warm forward passes in PyTorch, eager and CUDA-graphed: the reference that
`scripts/warm_pass_bench.sh` lays beside replay's own warm passes.

Each architecture is rebuilt with the shapes of Switchyard's built-in one
(hidden size, layers, heads, FFN = 4 x hidden, vocabulary), fp16, random
weights, `seq` tokens per request: token (+ position) embedding, the
transformer blocks (nn.TransformerEncoderLayer, pre-norm for the decoders,
post-norm for BERT), and the head (LM logits of the last token through the
tied embedding for OPT/GPT-2, the pooler for BERT). A pass is timed with CUDA
events around it, after warm-up; the median of `--reps` passes is printed.

usage: torch_reference.py [--arch LIST] [--batches LIST] [--seq N] [--reps N]
prints CSV: arch,batch,eager_ms,graph_ms
"""
import argparse
import statistics

import torch
from torch import nn

# name: (hidden, layers, heads, vocab, decoder)
ARCHS = {
    "bert-base": (768, 12, 12, 30522, False),
    "bert-large": (1024, 24, 16, 30522, False),
    "gpt2": (768, 12, 12, 50257, True),
    "opt-125m": (768, 12, 12, 50272, True),
    "opt-1.3b": (2048, 24, 32, 50272, True),
    "opt-2.7b": (2560, 32, 32, 50272, True),
}


class Model(nn.Module):
    def __init__(self, hidden, layers, heads, vocab, decoder, seq):
        super().__init__()
        self.decoder = decoder
        self.tok = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(seq, hidden)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                hidden,
                heads,
                4 * hidden,
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=decoder,
            )
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(hidden)
        self.pool = nn.Linear(hidden, hidden)
        mask = torch.full((seq, seq), float("-inf")).triu(1) if decoder else None
        self.register_buffer("mask", mask)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok(ids) + self.pos(pos)
        for b in self.blocks:
            x = b(x, src_mask=self.mask, is_causal=self.decoder)
        if self.decoder:
            return self.norm(x[:, -1]) @ self.tok.weight.t()
        return torch.tanh(self.pool(x[:, 0]))


def timed(fn, reps):
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="bert-base,gpt2,opt-1.3b,opt-2.7b")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    torch.manual_seed(0)
    print("arch,batch,eager_ms,graph_ms")
    for name in args.arch.split(","):
        hidden, layers, heads, vocab, decoder = ARCHS[name]
        model = Model(hidden, layers, heads, vocab, decoder, args.seq)
        model = model.half().cuda().eval()
        for batch in [int(b) for b in args.batches.split(",")]:
            ids = torch.randint(0, vocab, (batch, args.seq), device="cuda")
            with torch.inference_mode():
                for _ in range(5):
                    model(ids)
                eager = timed(lambda: model(ids), args.reps)
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(3):
                        model(ids)
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    model(ids)
                for _ in range(5):
                    graph.replay()
                graphed = timed(graph.replay, args.reps)
            print(f"{name},{batch},{eager:.3f},{graphed:.3f}", flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
