#!/usr/bin/env bash
# compare.sh - unroll-bench against PyTorch (shared/bench/torch_ref.py), same machine,
# same session. Runs unroll-bench with 1 and 2 threads and torch_ref.py with
# --threads 1 --blas-threads 1 and --threads 1 --blas-threads 2 (2 torch threads
# plus 2 BLAS threads oversubscribe 2 cores), keeps the best figure of each side
# per key, and prints unroll / torch for every key both report; then unroll's
# matmul against numpy's (OpenBLAS) at the same thread count.
#
#   bench/compare.sh [--seconds S] [--only name,name,...]
# Environment: UR_BENCH (default build/bin/unroll-bench), PYTHON (/usr/bin/python3),
# TORCH_REF (../shared/bench/torch_ref.py beside the source tree).
# With --only matmul-rnn, numpy is also timed on each RNN GEMM shape.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bench="${UR_BENCH:-$root/build/bin/unroll-bench}"
python="${PYTHON:-/usr/bin/python3}"
torch_ref="${TORCH_REF:-$root/../shared/bench/torch_ref.py}"
[ -x "$bench" ] || { echo "compare.sh: $bench not found (build first, or set UR_BENCH)" >&2; exit 1; }
[ -f "$torch_ref" ] || { echo "compare.sh: $torch_ref not found (set TORCH_REF)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for t in 1 2; do
  echo "== unroll-bench --threads $t $*" >&2
  "$bench" --threads "$t" "$@" > "$tmp/unroll-$t.json"
  echo "== torch_ref.py --threads 1 --blas-threads $t $*" >&2
  "$python" "$torch_ref" --threads 1 --blas-threads "$t" "$@" > "$tmp/torch-$t.json"
done

"$python" - "$tmp" <<'PY'
import json, re, subprocess, sys, os
tmp = sys.argv[1]
load = lambda name: json.load(open(os.path.join(tmp, name)))
un = {t: load(f"unroll-{t}.json") for t in (1, 2)}
to = {t: load(f"torch-{t}.json") for t in (1, 2)}

def flat(res):
    """key -> number, for tokens_per_s and other (nested objects as key/sub)."""
    out = {}
    for section in ("tokens_per_s", "other"):
        for k, v in res.get(section, {}).items():
            if isinstance(v, dict):
                out.update({f"{k}/{s}": x for s, x in v.items()})
            else:
                out[k] = v
    return out

def best(runs, key):
    """Best value of a key over runs: the smallest for memory and latency, else the largest."""
    vals = [flat(r)[key] for r in runs if key in flat(r)]
    if not vals:
        return None
    low = key.startswith("peak_rss") or key.endswith("us_per_internal_node")
    return min(vals) if low else max(vals)

# unroll's matmul keys answer torch's under another name
alias = lambda k: re.sub(r"^unroll-matmul-", "torch-matmul-", k)
ukeys = sorted({k for r in un.values() for k in flat(r)})
print(f"unroll {un[1]['unroll']} ({un[1]['isa']}) vs torch {to[1]['torch']}: best of both thread settings on each side")
print(f"{'key':40} {'unroll':>12} {'torch':>12} {'unroll/torch':>13}")
for k in ukeys:
    u, t = best(un.values(), k), best(to.values(), alias(k))
    if u is None or t is None:
        continue
    print(f"{k:40} {u:12.2f} {t:12.2f} {u / t:13.2f}")

print(f"\n{'matmul, same thread count':40} {'unroll':>12} {'numpy':>12} {'unroll/numpy':>13}")
for n in (64, 256, 1024):
    for th in (1, 2):
        u = flat(un[th]).get(f"unroll-matmul-{n}-gflops")
        p = flat(to[th]).get(f"numpy-matmul-{n}-gflops")
        if u is not None and p is not None:
            print(f"{f'matmul-{n} GFLOP/s, {th} thread(s)':40} {u:12.2f} {p:12.2f} {u / p:13.2f}")

# RNN GEMM shapes (unroll-bench --only matmul-rnn): numpy on the same shapes
shapes = [k for k in ukeys if k.startswith("unroll-gemm-")]
if shapes:
    code = r'''
import os, sys, time, json, statistics
import numpy as np
out = {}
for key in sys.argv[2:]:
    tt, dims = key.split("-")[2:4]
    m, k, n = map(int, dims.split("x"))
    A = np.random.rand(*((k, m) if tt[0] == "T" else (m, k))).astype(np.float32)
    B = np.random.rand(*((n, k) if tt[1] == "T" else (k, n))).astype(np.float32)
    a = A.T if tt[0] == "T" else A
    b = B.T if tt[1] == "T" else B
    C = np.empty((m, n), np.float32)
    for _ in range(3): np.matmul(a, b, out=C)
    rates = []
    for _ in range(3):
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < float(sys.argv[1]):
            np.matmul(a, b, out=C); done += 2 * m * n * k
        rates.append(done / (time.perf_counter() - t0) / 1e9)
    out[key] = statistics.median(rates)
print(json.dumps(out))
'''
    secs = "0.5"
    print(f"\n{'RNN GEMM shapes (GFLOP/s)':40} {'threads':>7} {'unroll':>9} {'numpy':>9} {'ratio':>7}")
    for th in (1, 2):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(th), OMP_NUM_THREADS=str(th))
        npr = json.loads(subprocess.check_output([sys.executable, "-c", code, secs] + shapes, env=env))
        for k in shapes:
            u = flat(un[th])[k]
            print(f"{k[len('unroll-gemm-'):-len('-gflops')]:40} {th:7d} {u:9.1f} {npr[k]:9.1f} {u / npr[k]:7.2f}")
PY
