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
#   scripts/test-sanitized.sh [test-file-substring...]
set -euo pipefail
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
if ! ldd build-sanitize/Release/tensorio.node | grep -q libasan; then
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
echo "test-sanitized: running the suite with $(basename "$asan") and $(basename "$ubsan") preloaded"
node scripts/run-tests.cjs "$@"
