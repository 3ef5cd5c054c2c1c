#!/usr/bin/env bash
# fuzz/run.sh TARGET [SECONDS] [LIBFUZZER OPTION...]
#
# Runs the libFuzzer target fuzz_TARGET of the fuzz build (build-fuzz/, or $HERALD_FUZZ_BUILD):
# first each input of fuzz/regressions/TARGET/ once (a crash found before must stay fixed), then
# fuzzing for SECONDS (default $FUZZ_TIME, else 15) from fuzz/corpus/TARGET/ and from what
# earlier runs found (build-fuzz/fuzz-work/TARGET/corpus/, kept between runs). Exits non-zero on
# any crash, leak, undefined behaviour, timeout or out-of-memory; the input that caused it is
# left in build-fuzz/fuzz-work/TARGET/artifacts/. Options after SECONDS go to libFuzzer
# (e.g. -jobs=2, -only_ascii=1, -use_value_profile=1).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${HERALD_FUZZ_BUILD:-$here/../build-fuzz}"
if [[ $# -lt 1 ]]; then
  echo "usage: fuzz/run.sh TARGET [SECONDS] [LIBFUZZER OPTION...]" >&2
  echo "targets: $(cd "$here/corpus" && echo *)" >&2
  exit 2
fi
target="$1"
seconds="${2:-${FUZZ_TIME:-15}}"
shift $(( $# >= 2 ? 2 : 1 ))

bin="$build/fuzz/fuzz_$target"
if [[ ! -x "$bin" ]]; then
  echo "fuzz/run.sh: $bin is missing: build it with 'make fuzz-build'" >&2
  exit 2
fi
work="$build/fuzz-work/$target"
mkdir -p "$work/corpus" "$work/artifacts"

options=(-timeout=25 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1
         "-artifact_prefix=$work/artifacts/")
if [[ -f "$here/dict/$target.dict" ]]; then
  options+=("-dict=$here/dict/$target.dict")
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

regressions=()
if [[ -d "$here/regressions/$target" ]]; then
  while IFS= read -r -d '' file; do
    regressions+=("$file")
  done < <(find "$here/regressions/$target" -type f ! -name '*.md' -print0 | sort -z)
fi
if [[ ${#regressions[@]} -gt 0 ]]; then
  echo "== fuzz_$target: ${#regressions[@]} regression input(s)"
  "$bin" "${options[@]}" "$@" "${regressions[@]}"
fi

corpora=("$work/corpus" "$here/corpus/$target")
echo "== fuzz_$target: fuzzing for ${seconds}s"
"$bin" "${options[@]}" -max_total_time="$seconds" "$@" "${corpora[@]}"
