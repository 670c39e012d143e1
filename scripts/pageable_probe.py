# Probe: why replay's pageable 4 MiB chunk copies run slower than calibration's.
import torch, time, os, sys, statistics as st
dev = torch.device('cuda:0')
CH = 4 << 20
cs = torch.cuda.Stream()
dst = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
def fill(n):
    t = torch.empty(n, dtype=torch.uint8)
    t.copy_(torch.randint(0, 255, (n,), dtype=torch.uint8))
    return t
def load(buf, chunk=CH, between=None):
    n = buf.numel()
    calls = []
    t0 = time.perf_counter()
    with torch.cuda.stream(cs):
        off = 0
        while off < n:
            m = min(chunk, n - off)
            a = time.perf_counter()
            dst[off:off+m].copy_(buf[off:off+m], non_blocking=True)
            calls.append(time.perf_counter() - a)
            if between: between()
            off += m
    cs.synchronize()
    return n / (time.perf_counter() - t0), n / sum(calls)
def report(name, rs):
    w = [r[0] for r in rs]; c = [r[1] for r in rs]
    print(f"{name}: wall {st.median(w)/1e9:.2f} GB/s, per-call {st.median(c)/1e9:.2f} GB/s (n={len(rs)})", flush=True)
big = fill(1 << 30)
load(big)
report("A 1GiB buffer, 4MiB chunks", [load(big) for _ in range(4)])
bufs = [fill(230_000_000) for _ in range(6)]
report("B 6x230MB buffers in turn", [load(b) for _ in range(3) for b in bufs])
# concurrent compute on another stream (BERT-ish matmuls), issued between chunks
x = torch.randn(1024, 768, device=dev, dtype=torch.half); w = torch.randn(768, 3072, device=dev, dtype=torch.half)
comp = torch.cuda.Stream()
def launch():
    with torch.cuda.stream(comp):
        for _ in range(8): torch.matmul(x, w)
report("C B + kernel launches between chunks", [load(b, between=launch) for _ in range(2) for b in bufs])
ev = []
def record():
    e = torch.cuda.Event(); e.record(cs); e.query(); ev.append(e)
report("D B + event record/query between chunks", [load(b, between=record) for _ in range(2) for b in bufs])
for ch in (1 << 20, 2 << 20, 8 << 20, 16 << 20, 32 << 20):
    report(f"E B with {ch>>20} MiB chunks", [load(b, chunk=ch) for b in bufs])
# fresh buffers never copied before (cold)
report("F fresh 230MB buffers, first copy", [load(fill(230_000_000)) for _ in range(4)])
