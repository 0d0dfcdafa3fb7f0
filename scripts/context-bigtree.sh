#!/usr/bin/env bash
# Build the "10,000-file measure" for `hone context`: COPIES copies of the given git repositories
# (each at refs/bench/start when the benchmark set it, else HEAD) committed into one new git
# repository at OUT. Not a CI test; nothing here is committed to hone.
#
#   scripts/context-bigtree.sh /tmp/bigtree 13 /work/benchrepos/*
#   cd /tmp/bigtree && for i in $(seq 12); do /usr/bin/time -f %e hone context "<task>" >/dev/null; done
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 OUT COPIES REPO..." >&2
    exit 2
fi
out=$1
copies=$2
shift 2
if [ -e "$out" ]; then
    echo "$out exists: pass a new directory" >&2
    exit 2
fi
mkdir -p "$out"
for repo in "$@"; do
    name=$(basename "$repo")
    commit=$(git -C "$repo" rev-parse -q --verify refs/bench/start || git -C "$repo" rev-parse HEAD)
    for copy in $(seq 1 "$copies"); do
        mkdir -p "$out/copy$copy/$name"
        git -C "$repo" archive "$commit" | tar -x -C "$out/copy$copy/$name"
    done
done
git -C "$out" init -q
git -C "$out" add -A
git -C "$out" -c user.name=bench -c user.email=bench@localhost commit -q -m "context measure"
echo "$(git -C "$out" ls-files | wc -l) files in $out"
