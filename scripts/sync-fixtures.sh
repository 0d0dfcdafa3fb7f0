#!/usr/bin/env bash
# Keeps the repository's copy of the golden fixtures byte-identical to their source, ../shared.
#   scripts/sync-fixtures.sh          copy ../shared/{parity,parity-v2,tokenizers} into tests/fixtures/
#   scripts/sync-fixtures.sh --check  exit 1 (and list the files) when the copy differs from ../shared;
#                                     exit 0 with a note when ../shared is not beside the clone
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="$root/../shared"
dest="$root/tests/fixtures"
sets=(parity parity-v2 tokenizers)

if [ ! -d "$shared" ]; then
  echo "sync-fixtures: no ../shared beside this clone; nothing to compare (the repository's copy is used as is)"
  exit 0
fi

if [ "${1:-}" = "--check" ]; then
  status=0
  for set in "${sets[@]}"; do
    if [ ! -d "$shared/$set" ]; then
      echo "sync-fixtures: ../shared/$set is missing; skipping it"
      continue
    fi
    if ! diff -r -q "$shared/$set" "$dest/$set"; then
      status=1
    fi
  done
  if [ "$status" -ne 0 ]; then
    echo "sync-fixtures: tests/fixtures differs from ../shared: run scripts/sync-fixtures.sh and commit the result" >&2
  else
    echo "sync-fixtures: tests/fixtures matches ../shared (${sets[*]})"
  fi
  exit "$status"
fi

for set in "${sets[@]}"; do
  [ -d "$shared/$set" ] || { echo "sync-fixtures: ../shared/$set is missing" >&2; exit 1; }
  rm -rf "${dest:?}/$set"
  mkdir -p "$dest/$set"
  cp -R "$shared/$set/." "$dest/$set/"
  chmod -R u+w "$dest/$set"
done
echo "sync-fixtures: copied ${sets[*]} from ../shared into tests/fixtures"
