#!/usr/bin/env bash
# Run on the development machine before the GPU check: fills the ignored folder gpu/ with what
# scripts/gpu-check.sh needs on a machine that has neither ../shared nor Node:
#   gpu/fixtures/tiny-bert/, gpu/fixtures/tiny_bert_reference.safetensors   (core_test's HF parity fixtures)
#   gpu/fixtures/tiny-gpt2/, gpu/fixtures/tiny_gpt2_reference.safetensors   (GPT-2 parity)
#   gpu/inputs/sentiment_p1.json   (the 2,111 test sentences under P1, pre-tokenized; PET training batches)
# and prints the `carry` list for the device run, after checking that the tree + gpu/ stay well under 64 MiB.
#   scripts/gpu-prepare.sh            (env SHARED: the shared folder, default ../shared)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SHARED="${SHARED:-$ROOT/../shared}"
REF="$SHARED/fixtures/hf-reference"
DATA="$SHARED/datasets/sentiment/test.jsonl"
LIMIT_MIB=64

for f in "$REF/tiny-bert/config.json" "$REF/tiny_bert_reference.safetensors" "$DATA" dist/lib/bench/inputs.js; do
  [ -e "$f" ] || { echo "gpu-prepare: $f is missing (dist/: npm run build:ts)" >&2; exit 1; }
done
if ! git check-ignore -q gpu/; then
  echo "gpu-prepare: gpu/ is not ignored by git (.gitignore should list /gpu/)" >&2
  exit 1
fi

[ -d gpu/fixtures ] && chmod -R u+w gpu/fixtures
rm -rf gpu/fixtures gpu/inputs
mkdir -p gpu/fixtures gpu/inputs
cp -r "$REF/tiny-bert" gpu/fixtures/tiny-bert
cp "$REF/tiny_bert_reference.safetensors" gpu/fixtures/
# GPT-2 parity (core_test's optional pair): the random 2-layer model is ~3 MB
cp -r "$REF/tiny-gpt2" gpu/fixtures/tiny-gpt2
cp "$REF/tiny_gpt2_reference.safetensors" gpu/fixtures/
chmod -R u+w gpu/fixtures  # the shared copies are read-only
node scripts/gpu-inputs.js --data "$DATA" --model models/zh-mini-mlm --out gpu/inputs/sentiment_p1.json

# gpu/ travels whole: nothing else may sit in it
extra="$(find gpu -mindepth 1 -maxdepth 1 ! -name fixtures ! -name inputs)"
if [ -n "$extra" ]; then
  echo "gpu-prepare: gpu/ holds other things that would travel too; remove them:" >&2
  echo "$extra" >&2
  exit 1
fi

kib() { du -sk "$@" | awk '{s += $1} END {print s + 0}'; }
tracked=$(git ls-files -z | xargs -0 du -ck 2>/dev/null | tail -n 1 | cut -f1)
untracked=0
if [ -n "$(git ls-files -o --exclude-standard)" ]; then
  untracked=$(git ls-files -o --exclude-standard -z | xargs -0 du -ck 2>/dev/null | tail -n 1 | cut -f1)
fi
carried=$(kib gpu)
total=$((tracked + untracked + carried))
echo "gpu-prepare: tracked ${tracked} KiB + untracked (not ignored) ${untracked} KiB + gpu/ ${carried} KiB =" \
  "$(awk -v t="$total" 'BEGIN {printf "%.1f", t / 1024}') MiB (limit ${LIMIT_MIB} MiB)"
du -sh gpu/fixtures gpu/inputs
if [ "$total" -gt $((LIMIT_MIB * 1024 * 9 / 10)) ]; then
  echo "gpu-prepare: too close to the ${LIMIT_MIB} MiB limit" >&2
  exit 1
fi
echo
echo 'carry: ["gpu"]'
echo "command: bash scripts/gpu-check.sh   (timeout_s 540; results under \$OUT)"
