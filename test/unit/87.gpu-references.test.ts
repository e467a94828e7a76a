// scripts/gpu/hf_references.py's half that runs here (scripts/gpu-prepare.sh, standard-library python3): what it
// writes for the GPU machine holds each model's config and weights byte for byte and its reference's inputs, equal
// to the shared fixture's, and none of the outputs that the GPU machine computes.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { readSafetensors } from '../../lib/safetensors'
import { fixtures, repo, tmpDir } from '../helpers/paths'

const script = path.join(repo, 'scripts/gpu/hf_references.py')
const inputKeys = ['input_ids', 'attention_mask', 'token_type_ids', 'masked_input_ids', 'mlm_labels', 'ptuning_input_ids']

t.test('inputs: models byte for byte, the references\' inputs only', async t => {
  const out = tmpDir()
  const pairs: Array<[string, string]> = [
    [path.join(fixtures, 'tiny-gpt2'), path.join(fixtures, 'tiny_gpt2_reference.safetensors')],
    [path.join(fixtures, 'families/tiny-albert'), path.join(fixtures, 'families/tiny-albert_reference.safetensors')],
    [path.join(fixtures, 'families/tiny-roberta'), path.join(fixtures, 'families/tiny-roberta_reference.safetensors')]
  ]
  execFileSync('python3', [script, 'inputs', out, ...pairs.flat()], { stdio: 'pipe' })
  for (const [modelDir, reference] of pairs) {
    const name = path.basename(modelDir)
    for (const f of ['config.json', 'model.safetensors']) {
      t.ok(fs.readFileSync(path.join(out, name, f)).equals(fs.readFileSync(path.join(modelDir, f))), `${name}/${f} copied as it is`)
    }
    const want = readSafetensors(reference)
    const got = readSafetensors(path.join(out, `${name}_inputs.safetensors`))
    t.same([...got.keys()].sort(), inputKeys.filter(k => want.has(k)).sort(), `${name}: the input tensors, no outputs`)
    for (const [k, v] of got) {
      const w = want.get(k)!
      t.same(v.shape, w.shape, `${name}.${k}: shape`)
      t.same([...v.data], [...w.data], `${name}.${k}: values`)
    }
  }
})

t.test('inputs: an odd argument list is refused', async t => {
  t.throws(() => execFileSync('python3', [script, 'inputs', tmpDir(), path.join(fixtures, 'tiny-gpt2')], { stdio: 'pipe' }),
    /MODEL_DIR REFERENCE pairs/)
})
