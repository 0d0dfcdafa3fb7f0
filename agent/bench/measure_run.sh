#!/usr/bin/env bash
# Measures `hone run` on a Rust fixture crate with the scripted (test-only) backend:
#  1. wall time of each phase for one iteration (from the transcript's phases.json);
#  2. how testing N candidates in parallel scales (N = 1..4, --jobs default = cores, and --jobs 1).
# Usage: agent/bench/measure_run.sh [path/to/hone]   (default: $CARGO_TARGET_DIR/debug/hone)
set -euo pipefail
hone=${1:-${CARGO_TARGET_DIR:-target}/debug/hone}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo=$work/adder
mkdir -p "$repo/src"
cat > "$repo/Cargo.toml" <<'TOML'
[package]
name = "adder"
version = "0.1.0"
edition = "2021"

[dependencies]
TOML
cat > "$repo/src/lib.rs" <<'RS'
pub fn add(a: i32, b: i32) -> i32 {
    a - b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        assert_eq!(add(2, 3), 5);
    }
}
RS
echo /target > "$repo/.gitignore"
git -C "$repo" init -q
git -C "$repo" add .
git -C "$repo" -c user.name=bench -c user.email=bench@example.com commit -qm init

block() { # SEARCH/REPLACE answer replacing `a - b` with $1, as a JSON string
  python3 -c 'import json,sys; print(json.dumps("src/lib.rs\n```\n<<<<<<< SEARCH\n    a - b\n=======\n    %s\n>>>>>>> REPLACE\n```\n" % sys.argv[1]))' "$1"
}
wrong=("a * b" "b - a" "a - b - 1" "a * b + 1")
script() { # N wrong candidates, one iteration
  local n=$1 answers=""
  for ((i = 0; i < n; i++)); do answers+="${answers:+,}$(block "${wrong[$i]}")"; done
  echo "{\"calls\": [{\"kind\": \"chat\", \"purpose\": \"edit\", \"responses\": [$answers]}]}" > "$work/script.json"
}
run() { # args...; prints the phases of the run
  (cd "$repo" && "$hone" run "fix add" --backend scripted --script "$work/script.json" --test "cargo test -q" \
    --no-plan --max-iterations 1 "$@" > /dev/null 2>&1 || true)
  local last
  last=$(ls -1 "$repo/.git/hone/runs" | sort | tail -1)
  python3 -c 'import json,sys; p=dict(json.load(open(sys.argv[1]))); print("  ".join(f"{k} {v:.2f}s" for k,v in p.items()))' \
    "$repo/.git/hone/runs/$last/phases.json"
}
# Warm the shared cargo target folders (one per parallel slot) so builds are incremental.
script 4; run --candidates 4 > /dev/null; run --candidates 4 > /dev/null
echo "== phases, one iteration, 1 candidate"
script 1; run --candidates 1
echo "== candidates tested in parallel (--jobs = cores = $(nproc))"
for n in 1 2 3 4; do script "$n"; echo "N=$n: $(run --candidates "$n")"; done
echo "== the same 4 candidates, --jobs 1"
script 4; echo "N=4 jobs=1: $(run --candidates 4 --jobs 1)"
