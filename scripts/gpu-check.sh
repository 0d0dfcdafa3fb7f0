#!/usr/bin/env bash
# hone's device check: run on a bare GPU machine (no Rust toolchain, no network) with a `hone` binary
# built elsewhere with `--features cuda` carried along. Prints device facts, checks the parity cases on
# the device, benchmarks a random-weight LLaDA-8B-shaped model, prints a table last, and writes every
# result under $OUT (or ./gpu-check-out). Dry-run it on CPU first:
#
#   scripts/gpu-check.sh --device cpu --shape llada-tiny --binary target/release/hone
#
# To prepare a device run: scripts/cuda-toolchain.sh && scripts/gpu-pack.sh, then run
# `bash scripts/gpu-check.sh` on the device with `.device` carried along.
#
# Options:
#   --binary PATH    the hone binary (default: $HONE_BIN, else .device/hone, else target/release/hone)
#   --device D       cuda (default), cuda:N or cpu
#   --shape P        random-model preset for the bench (default llada-8b; llada-tiny for a dry run)
#   --parity DIR     parity cases (default: tests/fixtures/parity)
#   --budget S       seconds the bench may take in all (default 420: the whole check fits 8 minutes)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${HONE_BIN:-}
device=cuda
shape=llada-8b
parity=
budget=420
while [ $# -gt 0 ]; do
  case $1 in
    --binary) bin=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --parity) parity=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    *) echo "gpu-check: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
# scripts/gpu-pack.sh leaves the binary xz-compressed so that it travels under the 64 MiB limit.
if [ -z "$bin" ] && [ -f "$root/.device/hone.xz" ] && [ ! -x "$root/.device/hone" ]; then
  if command -v xz >/dev/null; then
    xz -dc "$root/.device/hone.xz" >"$root/.device/hone"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$root/.device/hone.xz" "$root/.device/hone"
  fi
  chmod +x "$root/.device/hone"
fi
if [ -z "$bin" ]; then
  for candidate in "$root/.device/hone" "$root/target/release/hone"; do
    [ -x "$candidate" ] && { bin=$candidate; break; }
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "gpu-check: no hone binary: pass --binary PATH" >&2; exit 2; }
if [ -z "$parity" ]; then
  for candidate in "$root/tests/fixtures/parity" "$root/.device/parity"; do
    [ -d "$candidate" ] && { parity=$candidate; break; }
  done
fi
out=${OUT:-$root/gpu-check-out}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
started=$(date +%s)

# The CUDA libraries the binary links (cuBLAS 13, cudart 13, curand 10) come with PyTorch's cu13 wheels
# on the device image; add every nvidia/*/lib folder we can find.
if [[ $device == cuda* ]]; then
  for lib in $(python3 - 2>/dev/null <<'PY'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for root in roots:
    for path in glob.glob(os.path.join(root, "nvidia", "**", "lib"), recursive=True):
        print(path)
PY
  ); do LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; done
  # libcuda.so.1 is the driver's: usually on the loader path already, else under /usr/local/nvidia.
  for lib in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [ -d "$lib" ] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$lib
  done
  export LD_LIBRARY_PATH
fi

echo "== device"
{
  date -u
  uname -srm
  nproc
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  else
    echo "nvidia-smi: not found"
  fi
  "$bin" --version
} 2>&1 | tee "$out/device.txt"

echo "== parity on $device"
parity_status=skipped
if [ -d "$parity" ]; then
  parity_status=pass
  for case in "$parity"/*/; do
    name=$(basename "$case")
    # Logits: f32 weights on the device; the goldens are f32 (README of the parity folder: 1e-4).
    if "$bin" engine forward --model "$case" --device "$device" --dtype f32 \
        --input "$case/forward.safetensors" --output "$out/$name-logits.safetensors" \
        --expect "$case/forward.safetensors" --tolerance 1e-4 >"$out/$name-forward.txt" 2>&1; then
      echo "forward  $name: $(tail -n 1 "$out/$name-forward.txt")" | tee -a "$summary"
    else
      parity_status=FAIL
      echo "forward  $name: FAIL $(tail -n 1 "$out/$name-forward.txt")" | tee -a "$summary"
    fi
    # Sampler cases compared in f32 on the device (token-exact).
    if "$bin" engine sample --model "$case" --device "$device" --dtype f32 \
        --cases "$case/generate.json" >"$out/$name-sample.txt" 2>&1; then
      echo "sample   $name: $(tail -n 1 "$out/$name-sample.txt")" | tee -a "$summary"  # "N cases match, 0 mismatch"
    else
      parity_status=FAIL
      echo "sample   $name: FAIL $(tail -n 1 "$out/$name-sample.txt")" | tee -a "$summary"
    fi
    # bf16: logits within a relative error of about 1e-2 of f32 (bf16 keeps 8 mantissa bits).
    if [[ $device == cuda* ]]; then
      "$bin" engine forward --model "$case" --device "$device" --dtype bf16 \
        --input "$case/forward.safetensors" --output "$out/$name-logits-bf16.safetensors" \
        --expect "$case/forward.safetensors" --tolerance 5e-2 --relative >"$out/$name-bf16.txt" 2>&1 \
        && echo "bf16     $name: $(tail -n 1 "$out/$name-bf16.txt")" | tee -a "$summary" \
        || echo "bf16     $name: outside 5e-2 relative: $(tail -n 1 "$out/$name-bf16.txt")" | tee -a "$summary"
    fi
  done
else
  echo "no parity folder (pass --parity DIR)" | tee -a "$summary"
fi

echo "== bench on $device ($shape)"
# prompt 512, gen 256, block 32; fixed 1 / 2 / 4 tokens per step (random weights are never confident
# enough for threshold decoding to commit more than one); cache none / prefix / dual; batch 1 and 8.
# Batch 1 runs first with one warm-up run per case (module loading, cuBLAS handles); batch 8 then
# runs without warm-up to fit the time budget (kernels are loaded by then; one repetition).
common=(bench --random-config "$shape" --device "$device" --prompt-lengths 512 --gen-lengths 256
  --block-length 32 --samplers fast --caches none,prefix,dual --tokens-per-step 1,2,4 --thresholds none
  --repetitions 1 --json)
[[ $device == cuda* ]] || common+=(--dtype f32)
remaining() { echo $((budget - ($(date +%s) - started))); }
bench_status=ok
for batch in 1 8; do
  warmup=1
  [ "$batch" = 8 ] && warmup=0
  left=$(remaining)
  if [ "$left" -le 10 ]; then
    echo "bench batch $batch: skipped, budget spent" | tee -a "$summary"
    bench_status=partial
    continue
  fi
  timeout "$left" "$bin" "${common[@]}" --batches "$batch" --warmup "$warmup" \
    >"$out/bench-b$batch.json" 2>"$out/bench-b$batch.log"
  status=$?
  if [ "$status" -ne 0 ]; then
    bench_status=partial
    echo "bench batch $batch: stopped (exit $status; 124 = out of time budget)" | tee -a "$summary"
  fi
done

echo "== table"
# `hone bench --json` prints one JSON document per run, written when the run ends; the stderr log has
# each case's line as it finishes, so a run cut by the budget still leaves its finished cases there.
python3 - "$out"/bench-b1.json "$out"/bench-b8.json <<'PY' | tee "$out/table.txt"
import json, sys
results = []
for path in sys.argv[1:]:
    try:
        results += json.load(open(path))["results"]
    except (OSError, ValueError, KeyError):
        # Cut by the budget: take the finished cases from the per-case lines of the log.
        log = path[: -len(".json")] + ".log"
        try:
            for line in open(log):
                if line.startswith("{"):
                    results.append(json.loads(line))
        except OSError:
            pass
rows = []
for r in results:
    c = r["case"]
    rule = c["rule"]
    rows.append((c["batch"], c["cache"], rule.get("value"), r["step_ms"], r["tokens_per_second"],
                 r["tokens_per_forward"], r["forwards"]))
print(f"{'batch':>5} {'cache':>6} {'tok/step':>8} {'step ms':>9} {'tok/s':>9} {'tok/fwd':>7} {'NFE':>5}")
for b, cache, k, ms, tps, tpf, nfe in sorted(rows, key=lambda r: (r[0], str(r[1]), r[2] or 0)):
    print(f"{b:>5} {cache:>6} {k!s:>8} {ms:>9.2f} {tps:>9.1f} {tpf:>7.2f} {nfe:>5}")
if rows:
    best = max(r[4] for r in rows)
    print(f"best: {best:.1f} tok/s = {best / 1100:.2f} x Mercury Coder's ~1,100 tok/s")
PY
echo "parity: $parity_status; bench: $bench_status; $(($(date +%s) - started)) s in all"
cat "$summary"
