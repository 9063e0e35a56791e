#!/usr/bin/env bash
# Runs the whole test suite (both paths, as npm test does) against an AddressSanitizer +
# UndefinedBehaviorSanitizer build of the addon.
#
# The addon is built with g++ and -DTENSORIO_SANITIZE=ON into build-sanitize/ and swapped in
# for build/Release/tensorio.node for the run; the regular build is put back on exit, even on
# failure. Node itself is not instrumented, so the sanitizer runtimes are preloaded into every
# process (LD_PRELOAD is inherited by the suite's child processes) and leak detection is off:
# node never frees its heap at exit, which LeakSanitizer would report as thousands of leaks.
# UBSan stops at the first finding (halt_on_error), so any report fails the run.
#
# With --leaks, LeakSanitizer runs too: node's own heap is never freed at exit, so every
# process reports leaks; the script keeps only leak records whose allocation stack passes
# through the addon (tensorio.node) and fails when there is one. Exit statuses are left to
# the tests (exitcode=0 for the sanitizer).
#   scripts/test-sanitized.sh [--leaks] [test-file-substring...]
set -euo pipefail
leaks=0
if [ "${1:-}" = "--leaks" ]; then
  leaks=1
  shift
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
asan="$(g++ -print-file-name=libasan.so)"
ubsan="$(g++ -print-file-name=libubsan.so)"
if [ ! -e "$asan" ] || [ ! -e "$ubsan" ]; then
  echo "test-sanitized: libasan/libubsan not found for g++ (apt-get install g++)" >&2
  exit 1
fi

addon=build/Release/tensorio.node
backup=build/tensorio.node.unsanitized
cp "$addon" "$backup"
restore() {
  mv -f "$backup" "$addon"
}
trap restore EXIT

# Node's own headers (as npm passes them to install scripts), so cmake-js never downloads.
export npm_config_nodedir="${npm_config_nodedir:-$(node -p 'require("path").resolve(process.execPath, "..", "..")')}"
node node_modules/cmake-js/bin/cmake-js compile --log-level warn --out build-sanitize --CDTENSORIO_SANITIZE=ON
# Captured first: with pipefail, grep -q closing the pipe early can fail ldd with SIGPIPE.
linked="$(ldd build-sanitize/Release/tensorio.node)"
if [[ "$linked" != *libasan* ]]; then
  echo "test-sanitized: build-sanitize/Release/tensorio.node is not linked with ASan" >&2
  exit 1
fi
# Built before the swap: the ESM build step loads the library (and so the addon).
npm run build --silent
npm run build:test --silent
cp build-sanitize/Release/tensorio.node "$addon"
export LD_PRELOAD="$asan:$ubsan"
# abort_on_error gives a core-style exit the test runner reports; allow_user_segv_handler
# leaves V8 its own SIGSEGV handler (WebAssembly bounds checks rely on it). The quarantine of
# freed memory (256 MiB by default) is cut to 8 MiB so the leak tests' RSS bounds measure
# leaks rather than ASan holding on to freed blocks; use-after-free of recent blocks is
# still caught.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allow_user_segv_handler=1:detect_stack_use_after_return=0:quarantine_size_mb=8"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if [ "$leaks" = 0 ]; then
  echo "test-sanitized: running the suite with $(basename "$asan") and $(basename "$ubsan") preloaded"
  node scripts/run-tests.cjs "$@"
  exit
fi

reports="$root/build-sanitize/lsan"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=0/detect_leaks=1}:exitcode=0:log_path=$reports/report"
export LSAN_OPTIONS="exitcode=0:max_leaks=0"
echo "test-sanitized: running the suite with LeakSanitizer; reports in ${reports#$root/}"
set +e
node scripts/run-tests.cjs "$@"
status=$?
set -e
# One record per "Direct/Indirect leak of ..." paragraph; keep those allocated by the addon.
ours=$(cat "$reports"/report.* 2>/dev/null | awk '
  /^(Direct|Indirect) leak of/ { if (record ~ /tensorio\.node/) print record; record = $0; next }
  /^$/ { if (record ~ /tensorio\.node/) print record "\n"; record = ""; next }
  { if (record != "") record = record "\n" $0 }
  END { if (record ~ /tensorio\.node/) print record }')
processes=$(ls "$reports" | wc -l)
records=$(cat "$reports"/report.* 2>/dev/null | grep -cE '^(Direct|Indirect) leak of' || true)
echo "test-sanitized: LeakSanitizer reports from $processes processes, $records leak records in all (node's own heap at exit)"
if [ -n "$ours" ]; then
  echo "test-sanitized: leaks allocated through tensorio.node:" >&2
  echo -e "$ours" >&2
  exit 1
fi
echo "test-sanitized: no leak record passes through tensorio.node"
exit $status
