#!/usr/bin/env bash
# compare.sh - unroll-bench against PyTorch (shared/bench/torch_ref.py), same machine,
# same session. Runs unroll-bench with 1 and 2 threads and torch_ref.py with
# --threads 1 --blas-threads 1 and --threads 1 --blas-threads 2 (2 torch threads
# plus 2 BLAS threads oversubscribe 2 cores), keeps the best figure of each side
# per key, and prints unroll / torch for every key either reports, the rate each
# training workload reaches in its matrix products, then unroll's matmul against
# numpy's (OpenBLAS) at the same thread count.
# --repeat N runs the four settings N times, interleaved, and keeps the best figure
# of each (on a shared, noisy machine a single run of either side may be slowed down
# by other work).
#
#   bench/compare.sh [--repeat N] [--seconds S] [--only name,name,...]
# Environment: UR_BENCH (default build/bin/unroll-bench), PYTHON (/usr/bin/python3),
# TORCH_REF (../shared/bench/torch_ref.py beside the source tree).
# With --only matmul-rnn, numpy is also timed on each RNN GEMM shape.
#
#   bench/compare.sh --onednn [--precision f32|bf16] [--windows N] [--seconds S]
# instead runs unroll-onednn (built where libdnnl-dev is installed; environment
# UR_ONEDNN, default build/bin/unroll-onednn): an LSTM and a GRU layer, forward +
# backward, on the shapes (T,B,I,H) 64,32,64,128 / 64,1,64,128 / 64,32,128,256 /
# 64,64,512,512 with 1 and 2 threads, in f32 and then in bf16 (or only the precision
# given), each run alternating the two libraries; one row per run: gradient
# agreement (bf16: the larger of the two libraries' distances from unroll's f32
# gradients), tokens/s of each, unroll / oneDNN.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bench="${UR_BENCH:-$root/build/bin/unroll-bench}"
python="${PYTHON:-/usr/bin/python3}"
torch_ref="${TORCH_REF:-$root/../shared/bench/torch_ref.py}"

if [ "${1:-}" = "--onednn" ]; then
  shift
  onednn="${UR_ONEDNN:-$root/build/bin/unroll-onednn}"
  [ -x "$onednn" ] || { echo "compare.sh: $onednn not found (apt-get install libdnnl-dev, rebuild)" >&2; exit 1; }
  precisions="f32 bf16"
  if [ "${1:-}" = "--precision" ]; then
    precisions="${2:?--precision needs f32 or bf16}"
    shift 2
  fi
  printf '%-5s %-4s %-16s %7s %9s %13s %13s %8s\n' cell prec "T,B,I,H" threads grad_err "oneDNN tok/s" "unroll tok/s" ratio
  for cell in lstm gru; do
    for shape in "64 32 64 128" "64 1 64 128" "64 32 128 256" "64 64 512 512"; do
      set -- $shape "$@"
      for t in 1 2; do
        for prec in $precisions; do # f32 and bf16 of one setting back to back
          # a row is printed even when the program reports disagreeing gradients (exit 1)
          { "$onednn" --cell "$cell" --precision "$prec" --T "$1" --B "$2" --I "$3" --H "$4" --threads "$t" "${@:5}" ||
            true; } | tail -n 1 |
            "${PYTHON:-/usr/bin/python3}" -c 'import json,sys; r=json.load(sys.stdin)
print("%-5s %-4s %-16s %7d %9.1e %13.1f %13.1f %8.2f" % (r["cell"], r["precision"],
      "%d,%d,%d,%d" % (r["T"], r["B"], r["I"], r["H"]),
      r["threads"], r["max_grad_err"], r["onednn_tokens_per_s"], r["unroll_tokens_per_s"], r["ratio"]))'
        done
      done
      shift 4
    done
  done
  exit 0
fi

[ -x "$bench" ] || { echo "compare.sh: $bench not found (build first, or set UR_BENCH)" >&2; exit 1; }
[ -f "$torch_ref" ] || { echo "compare.sh: $torch_ref not found (set TORCH_REF)" >&2; exit 1; }

repeat=1
if [ "${1:-}" = "--repeat" ]; then
  repeat="${2:?--repeat needs a count}"
  shift 2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$repeat"); do
  for t in 1 2; do
    echo "== [$r/$repeat] unroll-bench --threads $t $*" >&2
    "$bench" --threads "$t" "$@" > "$tmp/unroll-$t-$r.json"
    echo "== [$r/$repeat] torch_ref.py --threads 1 --blas-threads $t $*" >&2
    "$python" "$torch_ref" --threads 1 --blas-threads "$t" "$@" > "$tmp/torch-$t-$r.json"
  done
done

"$python" - "$tmp" "$repeat" <<'PY'
import json, re, subprocess, sys, os
tmp, repeat = sys.argv[1], int(sys.argv[2])
load = lambda name: json.load(open(os.path.join(tmp, name)))

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

lower_better = lambda k: k.startswith("peak_rss") or k.endswith("us_per_internal_node")

def best(runs, key):
    """Best value of a key over flat runs: the smallest for memory and latency, else the largest."""
    vals = [r[key] for r in runs if key in r]
    if not vals:
        return None
    return min(vals) if lower_better(key) else max(vals)

def merged(side, t):
    """The best figure of each key over the repeats of one side and thread setting."""
    runs = [flat(load(f"{side}-{t}-{r}.json")) for r in range(1, repeat + 1)]
    return {k: best(runs, k) for k in dict.fromkeys(k for r in runs for k in r)}

meta_un, meta_to = load("unroll-1-1.json"), load("torch-1-1.json")
un = {t: merged("unroll", t) for t in (1, 2)}
to = {t: merged("torch", t) for t in (1, 2)}

# unroll's matmul keys answer torch's under another name
alias = lambda k: re.sub(r"^unroll-matmul-", "torch-matmul-", k)
fmt = lambda v: f"{v:11.2f}" if v is not None else f"{'-':>11}"
ukeys = [k for k in dict.fromkeys(k for t in (1, 2) for k in un[t]) if not k.endswith("-gflops")
         or k.startswith("unroll-")]
tkeys = [k for k in dict.fromkeys(k for t in (1, 2) for k in to[t])
         if not k.startswith("numpy-") and k not in {alias(u) for u in ukeys}]
print(f"unroll {meta_un['unroll']} ({meta_un['isa']}) vs torch {meta_to['torch']}: each side's best of its two "
      f"thread settings (and of {repeat} run(s) each); ratio = unroll/torch (keys marked * are "
      f"lower-is-better: below 1 is better)")
print(f"{'key':36} {'unroll 1t':>11} {'unroll 2t':>11} {'torch 1+1':>11} {'torch 1+2':>11} "
      f"{'unroll':>11} {'torch':>11} {'ratio':>8}")
for k in ukeys + tkeys:
    tk = alias(k)
    row = [un[1].get(k), un[2].get(k), to[1].get(tk), to[2].get(tk)]
    u, t = best(un.values(), k), best(to.values(), tk)
    ratio = f"{u / t:8.2f}" if u is not None and t else f"{'-':>8}"
    name = k + (" *" if lower_better(k) else "")
    print(f"{name:36} {fmt(row[0])} {fmt(row[1])} {fmt(row[2])} {fmt(row[3])} {fmt(u)} {fmt(t)} {ratio}")

# Matrix-product rate of each training workload: unroll-bench counts the FLOPs of
# the products of one step (forward + backward); torch does the same products, so its
# rate is its throughput times the same FLOPs per unit.
peak = max((un[t].get("unroll-matmul-1024-gflops") or 0 for t in (1, 2)), default=0)
print(f"\n{'GFLOP/s in matrix products':36} {'unroll':>11} {'% of peak':>10} {'torch':>11}   "
      f"(peak: unroll-matmul-1024, best thread count: {peak:.1f})")
for k in [k for k in dict.fromkeys(k for t in (1, 2) for k in un[t]) if k.endswith("-gflops")
          and not k.startswith("unroll-")]:
    base = k[:-len("-gflops")]
    unit = base if base in un[1] or base in un[2] else base + "/trees_per_s"
    th = max((1, 2), key=lambda t: un[t].get(k, 0))
    g = un[th].get(k)
    u_rate, t_rate = un[th].get(unit), best(to.values(), unit)
    tg = g * t_rate / u_rate if g and u_rate and t_rate else None
    pct = f"{100 * g / peak:9.0f}%" if g and peak else f"{'-':>10}"
    print(f"{base:36} {fmt(g)} {pct} {fmt(tg)}")

print(f"\n{'matmul, same thread count':40} {'unroll':>12} {'numpy':>12} {'unroll/numpy':>13}")
for n in (64, 256, 1024):
    for th in (1, 2):
        u = un[th].get(f"unroll-matmul-{n}-gflops")
        p = to[th].get(f"numpy-matmul-{n}-gflops")
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
            u = un[th][k]
            print(f"{k[len('unroll-gemm-'):-len('-gflops')]:40} {th:7d} {u:9.1f} {npr[k]:9.1f} {u / npr[k]:7.2f}")
PY
