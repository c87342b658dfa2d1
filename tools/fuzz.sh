#!/usr/bin/env bash
# tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]: builds the libFuzzer targets
# of tests/fuzz (clang-14, ASan+UBSan, in build-fuzz/) and runs each one for
# SECONDS_PER_TARGET seconds (default 20) on a fresh copy of its seed corpus
# (tests/fuzz/seeds/<target>/). TARGET is a name such as "markdown" or
# "fuzz_markdown"; default: every tests/fuzz/fuzz_*.cc.
#
# Prints, per target, the executions and the findings; crash, timeout, leak
# and OOM inputs are kept in build-fuzz/crashes/<target>/ (reproduce with
# build-fuzz/bin/fuzz_<target> <file>). Exits 1 if any target found
# something, 2 on a build failure.
#
# Environment: JOBS (build jobs, default nproc), CC/CXX (default clang-14),
# FUZZ_ARGS (more libFuzzer flags, e.g. "-jobs=2 -workers=2").
# CI: `tools/fuzz.sh` (build + 5 x 20 s); longer on demand: `tools/fuzz.sh 600`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-fuzz"
seconds=${1:-20}
[[ $# -gt 0 ]] && shift
if ! [[ $seconds =~ ^[0-9]+$ ]] || (( seconds == 0 )); then
  echo "usage: tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi

targets=()
if [[ $# -gt 0 ]]; then
  for t in "$@"; do targets+=("${t#fuzz_}"); done
else
  for src in "$root"/tests/fuzz/fuzz_*.cc; do
    [[ $src == *_test.cc ]] && continue
    name=$(basename "$src" .cc)
    targets+=("${name#fuzz_}")
  done
fi
for t in "${targets[@]}"; do
  if [[ ! -f $root/tests/fuzz/fuzz_$t.cc ]]; then
    echo "fuzz.sh: no target '$t' (tests/fuzz/fuzz_$t.cc)" >&2
    exit 2
  fi
done

export CC=${CC:-clang-14} CXX=${CXX:-clang++-14}
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz.sh: $CXX not found; install it with: apt-get install -y clang-14 libclang-rt-14-dev" >&2
  exit 2
fi

start=$SECONDS
configure_log=$(mktemp)
# RelWithDebInfo without -DNDEBUG: the core's debug assertions are findings too.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only" \
  -DMEDSEARCH_FUZZ=ON -DMEDSEARCH_BUILD_PYTHON=OFF -DMEDSEARCH_BUILD_BENCH=OFF \
  -DMEDSEARCH_BUILD_TESTS=OFF -DMEDSEARCH_BUILD_CLI=OFF >"$configure_log" 2>&1 \
  || { cat "$configure_log" >&2; rm -f "$configure_log"; exit 2; }
rm -f "$configure_log"
ninja -C "$build" -j "${JOBS:-$(nproc)}" "${targets[@]/#/fuzz_}" || exit 2
build_time=$((SECONDS - start))

# Readers that take paths write to a per-process scratch directory under
# TMPDIR; tmpfs makes that several times faster than a disk-backed /tmp.
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
summary=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t" crashes="$build/crashes/$t" log="$build/logs/$t.log"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
  [[ -d $root/tests/fuzz/seeds/$t ]] && cp "$root/tests/fuzz/seeds/$t"/* "$corpus"/
  before=$(find "$crashes" -type f | wc -l)
  args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$crashes/")
  [[ -f $root/tests/fuzz/fuzz_$t.dict ]] && args+=(-dict="$root/tests/fuzz/fuzz_$t.dict")
  # index_load regenerates its seeds from the current file format, beside the checked-in ones.
  rc=0
  MEDSEARCH_FUZZ_WRITE_SEEDS="$corpus" timeout -k 10 $((seconds + 120)) \
    "$build/bin/fuzz_$t" "${args[@]}" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || rc=$?
  # A crashed target leaves its scratch directory (removed at normal exit).
  for d in "${TMPDIR:-/tmp}/medsearch-fuzz-$t-"*; do
    [[ -d $d ]] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"
  done
  execs=$(awk '/stat::number_of_executed_units:/ {n += $2} END {print n + 0}' "$log")
  found=$(( $(find "$crashes" -type f | wc -l) - before ))
  if (( rc != 0 || found > 0 )); then
    status=1
    summary+=("$(printf '%-12s %10s execs  FAILED (exit %d, %d new input(s) in %s)' "$t" "$execs" "$rc" "$found" "${crashes#"$root"/}")")
    echo "---- $t: $log" >&2
    grep -E "ERROR: |runtime error|FUZZ_CHECK|SUMMARY|Test unit written|^    #[0-9] " "$log" | head -30 >&2 || tail -30 "$log" >&2
  else
    summary+=("$(printf '%-12s %10s execs  no findings' "$t" "$execs")")
  fi
done

echo "fuzz.sh: built in ${build_time}s, ran ${#targets[@]} target(s) x ${seconds}s, total $((SECONDS - start))s"
printf '  %s\n' "${summary[@]}"
exit $status
