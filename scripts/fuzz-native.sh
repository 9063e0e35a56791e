#!/usr/bin/env bash
# Builds the libFuzzer harnesses of native/fuzz/ with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer and runs each for N seconds (default 60), seeded with the real
# files in ../shared/fixtures. Figures are printed and appended to
# bench/results/fuzz-native-<date>.txt; crashing inputs land in build/fuzz/artifacts/.
# Needs clang-14 and libclang-rt-14-dev (apt-get install clang-14 libclang-rt-14-dev).
#   scripts/fuzz-native.sh [seconds] [harness...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
cxx="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
if [ -z "$cxx" ]; then
  echo "fuzz-native: clang++ not found; apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 1
fi
fixtures="${TENSORIO_FIXTURES:-$root/../shared/fixtures}"
if [ ! -d "$fixtures" ]; then
  echo "fuzz-native: fixtures not found at $fixtures" >&2
  exit 1
fi
out="$root/build/fuzz"
mkdir -p "$out/artifacts"
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  for f in "$root"/native/fuzz/*.cc; do harnesses+=("$(basename "$f" .cc)"); done
fi
results="$root/bench/results/fuzz-native-$(date -u +%F).txt"
mkdir -p "$(dirname "$results")"
echo "# $(date -u +%FT%TZ) $("$cxx" --version | head -1), ${seconds}s per harness, $(nproc) cores" >> "$results"
status=0
for name in "${harnesses[@]}"; do
  binary="$out/$name"
  "$cxx" -std=c++17 -pthread -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    "$root/native/fuzz/$name.cc" -o "$binary"
  # A fresh corpus seeded with every fixture (libFuzzer caps input size with -max_len).
  corpus="$out/corpus-$name"
  mkdir -p "$corpus"
  find "$fixtures" -type f -size -1M -exec cp -f {} "$corpus/" \;
  log="$out/$name.log"
  set +e
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "$binary" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$out/artifacts/$name-" -print_final_stats=1 > "$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  speed=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  crashes=$(ls "$out/artifacts" | grep -c "^$name-" || true)
  line="$name: ${execs:-?} inputs in ${seconds}s (${speed:-?}/s), ${cov:-cov: ?}, exit $rc, crash artifacts $crashes"
  echo "$line"
  echo "$line" >> "$results"
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log" >&2
    status=1
  fi
done
exit $status
