#!/usr/bin/env bash
# Re-simulates every one-GPU workload of a validation run with its profile,
# as measured and with host stalls fitted to the tune half's replays
# (`scripts/host_stalls.py`), and prints, per workload, the simulator's
# p50/p90/p99 error and KS distance against that run's hardware for both.
# Tuned on the tune half only; the holdout half is only reported.
#
# usage: scripts/resim_host_stalls.sh RUN_DIR [THRESHOLD_MS]
# e.g.   scripts/resim_host_stalls.sh results/validation/h100_current 1.0
# RUN_DIR holds profile.yaml and <workload>/replay/requests.csv (as
# scripts/validate.sh writes them). BIN (default target/release) holds sim
# and plot.
set -euo pipefail
run=${1:?usage: scripts/resim_host_stalls.sh RUN_DIR [THRESHOLD_MS]}
threshold=${2:-1.0}
bin=${BIN:-target/release}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
tune=(round_robin bursty poisson onoff_lfu stop_and_start)
holdout=(gamma_lfu_mixed onoff_per_model stop_and_start_gamma streaming resident_trace round_robin_belady)
dirs=()
for w in "${tune[@]}"; do
    [[ -f "$run/$w/replay/requests.csv" ]] && dirs+=("$run/$w/replay")
done
fit=$(python3 scripts/host_stalls.py --threshold-ms "$threshold" "${dirs[@]}" 2>"$tmp/fit.txt")
echo "Host stalls fitted to the tune half ($threshold ms threshold):"
sed 's/^/    /' "$tmp/fit.txt"
echo "$fit"
cp "$run/profile.yaml" "$tmp/base.yaml"
# The two fields go under `jitter:` (the profile has one: calibrate writes it).
awk -v fit="$fit" '{ print } /^jitter:/ { print fit }' "$run/profile.yaml" > "$tmp/stalls.yaml"
echo
echo "| workload | half | profile | p50 err | p90 err | p99 err | KS |"
echo "|---|---|---|--:|--:|--:|--:|"
for w in "${tune[@]}" "${holdout[@]}"; do
    [[ -f "$run/$w/replay/requests.csv" ]] || continue
    half=holdout; [[ " ${tune[*]} " == *" $w "* ]] && half=tune
    yaml=$(ls experiments/validation/*/"$w".yaml)
    for p in base stalls; do
        "$bin/sim" -w "$yaml" --hardware "$tmp/$p.yaml" --out "$tmp/$w-$p" --no-timeline >/dev/null 2>&1
        "$bin/plot" compare "$run/$w/replay" "$tmp/$w-$p" --labels hardware,sim --join --out "$tmp/$w-$p-cmp" >/dev/null 2>&1
        # table.csv row 3: the sim against the hardware.
        sed -n 3p "$tmp/$w-$p-cmp/table.csv" | awk -F, -v w="$w" -v h="$half" -v p="$p" \
            '{ printf "| %s | %s | %s | %+.1f%% | %+.1f%% | %+.1f%% | %.3f |\n", w, h, p, 100*$11, 100*$12, 100*$13, $14 }'
    done
done
