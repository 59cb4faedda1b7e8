#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: FUZZ_SECONDS each (default 20).
#
#   bash tests/fuzz/run.sh                 # all targets
#   FUZZ_SECONDS=300 bash tests/fuzz/run.sh bearer
#
# Needs cargo-fuzz (installed here when missing, from crates.io) and a C++
# compiler (libfuzzer-sys builds libFuzzer). Works on a stable toolchain,
# no nightly needed. No sanitizer: the code fuzzed forbids `unsafe`, so
# AddressSanitizer would only slow the build and the runs; panics, overflow
# checks and debug assertions are what the targets catch. (Without a
# sanitizer cargo-fuzz passes only stable rustc flags; RUSTC_BOOTSTRAP=1 is
# set anyway, so that `--sanitizer address` also works on stable if ever
# wanted.) A crash leaves its input under
# tests/fuzz/artifacts/<target>/ and fails the script. The corpus grows
# under tests/fuzz/corpus/ (not committed).
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(api_key bearer create_request context_token)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
    echo "fuzz: ${target} for ${seconds}s"
    mkdir -p "corpus/${target}"
    if ! cargo fuzz run --sanitizer none --release "${target}" "corpus/${target}" -- \
        -max_total_time="${seconds}" -max_len=65536 -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: ${target} failed (a crash leaves its input under tests/fuzz/artifacts/${target}/)"
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" || true
done
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
