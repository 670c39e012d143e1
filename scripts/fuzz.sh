#!/usr/bin/env bash
# Mutation fuzzing of every input parser (crates/core/tests/fuzz_parsers.rs)
# for a bounded time: rounds of PROPTEST_CASES cases each, new random seeds
# every round, until the time is up or a round fails. Not part of CI's
# test time (CI runs proptest's default 256 cases).
#
# usage: scripts/fuzz.sh [SECONDS (default 600)] [CASES per round (default 20000)]
# Prints one line per round; on a failure, proptest's minimal failing input
# and exit 1.
set -euo pipefail
seconds=${1:-600}
cases=${2:-20000}
cargo build --release -p switchyard-core --tests --quiet
end=$((SECONDS + seconds))
round=0
total=0
while (( SECONDS < end )); do
    round=$((round + 1))
    start=$SECONDS
    if ! PROPTEST_CASES=$cases cargo test --release --quiet -p switchyard-core --test fuzz_parsers 2>&1 | tail -n 30 > /tmp/fuzz_round.log; then
        cat /tmp/fuzz_round.log
        echo "round $round failed after $total cases in earlier rounds"
        exit 1
    fi
    total=$((total + 4 * cases))
    echo "round $round: 4 parsers x $cases cases passed in $((SECONDS - start)) s ($total in all)"
done
echo "fuzzing: $total cases over $round rounds in $seconds s, no failure"
