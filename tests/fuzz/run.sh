#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time: FUZZ_SECONDS
# each (default 20), FUZZ_JOBS at once (default: one per core).
#
#   bash tests/fuzz/run.sh                 # all targets
#   FUZZ_SECONDS=300 bash tests/fuzz/run.sh bearer
#
# Drives libFuzzer directly, so CI needs no cargo-fuzz (installing it costs
# about a minute, and it would only set these flags): the targets are built with the coverage instrumentation
# `cargo fuzz build` passes to rustc (sancov, 8-bit counters, PC table,
# compare tracing, stack depth, `--cfg fuzzing`), on a stable toolchain;
# one codegen unit, debug assertions and overflow checks come from the
# crate's release profile. No sanitizer: the code fuzzed forbids `unsafe`,
# so panics, overflows and debug assertions are what the targets catch.
# Needs a C++ compiler (libfuzzer-sys builds libFuzzer).
#
# A crash, timeout or out-of-memory fails the script and prints the path of
# the input that caused it, under tests/fuzz/artifacts/<target>/; replay it
# by running the target's binary (printed too) with that path. The corpus
# grows under tests/fuzz/corpus/ (not committed), from the committed seeds
# under tests/fuzz/seeds/<target>/ when there are any (valid inputs, so
# that a short run starts past the decoder). The build goes to
# FUZZ_TARGET_DIR (default target/fuzz at the repository's root).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${FUZZ_SECONDS:-20}"
jobs="${FUZZ_JOBS:-$(nproc)}"
target_dir="${FUZZ_TARGET_DIR:-$root/target/fuzz}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(api_key bearer create_request context_token sip_message sip_transfer redaction)
fi

# --target: the instrumentation then applies to the targets and their
# dependencies, not to build scripts and proc macros.
triple="$(rustc -vV | sed -n 's/^host: //p')"
instrumentation=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    --cfg fuzzing
)
case "$triple" in
*-linux-*) instrumentation+=(-Cllvm-args=-sanitizer-coverage-stack-depth) ;;
esac

echo "fuzz: building ${targets[*]}"
build_args=()
for target in "${targets[@]}"; do
    build_args+=(--bin "$target")
done
started=$SECONDS
if ! RUSTFLAGS="${instrumentation[*]} ${RUSTFLAGS:-}" cargo build --quiet --release --locked \
    --manifest-path "$here/Cargo.toml" --target "$triple" --target-dir "$target_dir" \
    "${build_args[@]}"; then
    # The lock file also pins the dependencies of the crates fuzzed, so it
    # goes stale when theirs change.
    echo "fuzz: the build failed; if tests/fuzz/Cargo.lock is out of date, update it with" >&2
    echo "  cargo update --workspace --manifest-path tests/fuzz/Cargo.toml" >&2
    exit 1
fi
echo "fuzz: built in $((SECONDS - started))s"
bin_dir="$target_dir/$triple/release"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# Runs one target; prints one summary, or the crash and its input's path.
fuzz_one() {
    local target="$1"
    local log="$logs/$target.log"
    local artifacts="$here/artifacts/$target"
    local corpora=("$here/corpus/$target")
    if [ -d "$here/seeds/$target" ]; then
        corpora+=("$here/seeds/$target")
    fi
    mkdir -p "$here/corpus/$target" "$artifacts"
    if "$bin_dir/$target" -artifact_prefix="$artifacts/" -max_total_time="$seconds" \
        -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        "${corpora[@]}" >"$log" 2>&1; then
        local runs new
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        new="$(sed -n 's/^stat::new_units_added: *//p' "$log")"
        echo "fuzz: ${target}: ${runs:-?} inputs in ${seconds}s, ${new:-?} new in the corpus, no crash"
        return 0
    fi
    local input
    input="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    {
        tail -n 60 "$log"
        echo "fuzz: ${target} FAILED"
        echo "fuzz: the failing input: ${input:-none written, see the log above}"
        echo "fuzz: replay with: $bin_dir/$target ${input:-<input>}"
    } >&2
    return 1
}

echo "fuzz: running each target for ${seconds}s, ${jobs} at once"
failed=()
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    batch=("${targets[@]:i:jobs}")
    pids=()
    for target in "${batch[@]}"; do
        fuzz_one "$target" &
        pids+=($!)
    done
    for j in "${!batch[@]}"; do
        wait "${pids[$j]}" || failed+=("${batch[$j]}")
    done
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
