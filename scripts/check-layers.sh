#!/usr/bin/env bash
# The layering DESIGN.md describes ("Map of the code"), checked: scripts/test.sh (which .ci/run
# runs) calls this first, and it fails if any rule is broken.
#
#   1. The HTTP shell (server/src/http) knows only bytes: it imports neither the S3 layer nor the
#      engine nor anything built on them (only crate::http, crate::limits, crate::time).
#   2. The S3 layer (server/src/s3) does not import the operator endpoints, the shard or the
#      server built on it.
#   3. The engine and the buffer pool import nothing of the server: no `keel::` path, and their
#      Cargo.toml names no keel crate above them.
#   4. No source file passes 900 lines and no function passes 100 (tests aside); functions over 70
#      are listed as worth splitting, without failing.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
broken() {
  echo "check-layers: $1" >&2
  fail=1
}

# 1. server/src/http: only http, limits and time from the crate; no engine, no S3.
if out=$(grep -rnE '\bcrate::[a-z_]+' server/src/http | grep -vE '\bcrate::(http|limits|time)\b'); then
  broken "server/src/http imports a module above the HTTP shell:"$'\n'"$out"
fi
if out=$(grep -rnE '\b(engine|keel_engine)::|\buse (engine|keel_engine)\b|\bsuper::super::' server/src/http); then
  broken "server/src/http imports the engine (or reaches out with super::super):"$'\n'"$out"
fi

# 2. server/src/s3: not the layers built on it.
if out=$(grep -rnE '\bcrate::(admin|endpoints|shard|server|cli|config)\b' server/src/s3); then
  broken "server/src/s3 imports a layer built on it:"$'\n'"$out"
fi

# 3. engine and iobuf: nothing of the server.
if out=$(grep -rnE '\bkeel::|\bcrate::(s3|http|shard|admin)\b' engine/src iobuf/src); then
  broken "the engine or the buffer pool imports the server:"$'\n'"$out"
fi
for manifest in engine/Cargo.toml iobuf/Cargo.toml; do
  if out=$(grep -nE '^(keel|keel-benches)\s*=|path\s*=\s*"\.\./(server|benches)"' "$manifest"); then
    broken "$manifest depends on the server:"$'\n'"$out"
  fi
done
if out=$(grep -nE 'path\s*=\s*"\.\./' iobuf/Cargo.toml); then
  broken "iobuf/Cargo.toml depends on another keel crate:"$'\n'"$out"
fi

# 4. Sizes: files of at most 900 lines; functions of at most 100 outside test modules.
while read -r n file; do
  [ "$file" = total ] && continue
  if [ "$n" -gt 900 ]; then
    broken "$file has $n lines (at most 900): split it by concept"
  fi
done < <(find server engine iobuf benches fuzz -name '*.rs' -not -path '*/target/*' -print0 | xargs -0 wc -l)

long=$(find server/src engine/src iobuf/src -name '*.rs' -not -name 'tests.rs' -print0 | xargs -0 awk '
  FNR == 1 { in_tests = 0; open_fn = "" }
  /^#\[cfg\(test\)\]/ { in_tests = 1 }
  in_tests { next }
  open_fn == "" && match($0, /^ *(pub(\([a-z]+\))? )?(const )?(async )?(unsafe )?fn [A-Za-z0-9_]+/) {
    indent = $0; sub(/[^ ].*/, "", indent)
    name = substr($0, RSTART, RLENGTH); sub(/.*fn /, "", name)
    open_fn = name; start = FNR; closer = indent "}"; pending = 1
  }
  open_fn != "" && pending && /;$/ && !/[{]/ { open_fn = ""; next }
  open_fn != "" && pending && /[{]$/ { pending = 0; if ($0 ~ /}$/ && FNR == start) { open_fn = ""; next } }
  open_fn != "" && !pending && $0 == closer {
    if (FNR - start + 1 > 70) printf "%d %s:%d %s is %d lines\n", FNR - start + 1, FILENAME, start, open_fn, FNR - start + 1
    open_fn = ""
  }
')
too_long=$(awk '$1 > 100 { $1 = ""; print substr($0, 2) }' <<<"$long")
if [ -n "$too_long" ]; then
  broken "functions over 100 lines (split them into named steps):"$'\n'"$too_long"
fi
worth=$(awk '$1 <= 100 { $1 = ""; print substr($0, 2) }' <<<"$long")
if [ -n "$worth" ]; then
  echo "check-layers: note: functions over 70 lines, worth splitting:"$'\n'"$worth" >&2
fi

if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "check-layers: ok"
