#!/usr/bin/env bash
# Run on the development machine before the GPU check: fills the ignored folder gpu/ with what
# scripts/gpu-check.sh needs on a machine that has neither ../shared nor Node:
#   gpu/fixtures/tiny-bert/, gpu/fixtures/tiny_bert_reference.safetensors   (core_test's HF parity fixtures)
#   gpu/fixtures/hf-inputs/NAME/, gpu/fixtures/hf-inputs/NAME_inputs.safetensors   (GPT-2 and the MLM families
#     RoBERTa, XLM-R, ALBERT, ERNIE: config + weights and their references' inputs; the check computes HF's outputs
#     there with scripts/gpu/hf_references.py, since their ~15 MB of reference logits would not fit)
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
# GPT-2 and the MLM families (core_test's later pairs): models and inputs only
pairs=("$REF/tiny-gpt2" "$REF/tiny_gpt2_reference.safetensors")
for r in "$REF"/families/*_reference.safetensors; do pairs+=("${r%_reference.safetensors}" "$r"); done
python3 scripts/gpu/hf_references.py inputs gpu/fixtures/hf-inputs "${pairs[@]}"
chmod -R u+w gpu/fixtures  # the shared copies are read-only
node scripts/gpu-inputs.js --data "$DATA" --model models/zh-mini-mlm --out gpu/inputs/sentiment_p1.json

# gpu/ travels whole: nothing else may sit in it
extra="$(find gpu -mindepth 1 -maxdepth 1 ! -name fixtures ! -name inputs)"
if [ -n "$extra" ]; then
  echo "gpu-prepare: gpu/ holds other things that would travel too; remove them:" >&2
  echo "$extra" >&2
  exit 1
fi

# bytes, as the device counts what travels
bytes() { xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
tracked=$(git ls-files -z | bytes)
untracked=$(git ls-files -z -o --exclude-standard | bytes)
carried=$(find gpu -type f -print0 | bytes)
total=$((tracked + untracked + carried))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "gpu-prepare: tracked $(mib "$tracked") MiB + untracked (not ignored) $(mib "$untracked") MiB + gpu/ $(mib "$carried") MiB =" \
  "$(mib "$total") MiB (limit ${LIMIT_MIB} MiB)"
du -sh gpu/fixtures gpu/inputs
if [ "$total" -gt $((LIMIT_MIB * 1048576 * 9 / 10)) ]; then
  echo "gpu-prepare: too close to the ${LIMIT_MIB} MiB limit" >&2
  exit 1
fi
echo
echo 'carry: ["gpu"]'
echo "command: bash scripts/gpu-check.sh   (timeout_s 540; results under \$OUT)"
