#!/usr/bin/env bash
# Derives the real traces bundled in traces/ from their published files and
# checks them byte for byte (see traces/README.md for licences and attribution).
#
#   bash scripts/fetch_real_traces.sh DATASET
#
# DATASET is a checkout (work tree or bare git folder) of the GitHub repository
# Azure/AzurePublicDataset. The Azure LLM inference traces 2023 are bundled
# unchanged: the script copies data/AzureLLMInferenceTrace_{code,conv}.csv to
# traces/azure_llm_{code,conv}_2023.csv and checks their SHA-256 against the
# files bundled (published file at commit b469a11 of that repository).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: $0 PATH_TO_AzurePublicDataset}
show() { # show FILE: the published file's bytes, from a work tree or a git folder
  if [ -f "$src/$1" ]; then cat "$src/$1"; else git --git-dir="$src" show "HEAD:$1"; fi
}
declare -A sha=(
  [code]=54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6
  [conv]=2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8
)
for kind in code conv; do
  out=traces/azure_llm_${kind}_2023.csv
  tmp=$(mktemp "traces/.azure_llm_${kind}.XXXXXX")
  show "data/AzureLLMInferenceTrace_${kind}.csv" > "$tmp"
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$got" != "${sha[$kind]}" ]; then
    rm -f "$tmp"
    echo "error: data/AzureLLMInferenceTrace_${kind}.csv has SHA-256 $got, expected ${sha[$kind]}" >&2
    exit 2
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$out"
  echo "$out: $(($(wc -l < "$out"))) requests (plus header), sha256 $got"
done
