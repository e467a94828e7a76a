#!/usr/bin/env python3
"""HF reference outputs for the GPU check (scripts/gpu-check.sh), computed on the machine that checks them.

The device takes 64 MiB in all, and the shared reference files of GPT-2 and of the MLM families (RoBERTa, XLM-R,
ALBERT, ERNIE: about 15 MB, nearly all of it full-vocabulary logits) do not fit beside the rest of the check; their
inputs and model weights (about 9 MB) do, and the device has transformers to compute the outputs. BERT's own fixture
still travels whole: it stays the check's fixed oracle.

  hf_references.py inputs OUT_DIR MODEL_DIR REFERENCE [MODEL_DIR REFERENCE ...]
      On the development machine, standard library only (scripts/gpu-prepare.sh): for each pair, copies the
      model's config.json and model.safetensors to OUT_DIR/NAME/ (NAME: the model folder's name) and the reference's
      input tensors to OUT_DIR/NAME_inputs.safetensors, bytes unchanged.
  hf_references.py reference IN_DIR [--out DIR] [--compare DIR_OR_FILE ...]
      On the device (torch + transformers): for each IN_DIR/NAME_inputs.safetensors and model IN_DIR/NAME/, writes
      DIR/NAME_reference.safetensors (DIR defaults to IN_DIR) as the shared fixtures were made: fp32 on the CPU, eval
      mode, the keys core_test reads (native/tests/core_test.cc):
        every model: `embedding_output` (hidden_states[0]: after ALBERT's projection, GPT-2's positions added),
          `last_hidden` (hidden_states[-1]: after GPT-2's ln_f), `logits` at every position;
        a masked LM (GPT-2 aside): `mlm_loss` of masked_input_ids against mlm_labels;
        GPT-2: `ptuning_loss`, HF's causal LM loss on ptuning_input_ids (labels = the ids), and
          `ptuning_grad_rows_1_8`, its gradient in wte rows 1..8 (the head is tied: both sides included).
      --compare names the shared reference files (or their folders, as NAME_reference.safetensors or
      NAME.replace('-', '_')_reference.safetensors): each output's largest difference from the fixture is printed,
      and any above 1e-5 (core_test's tolerance) fails. Measured here (PyTorch 2.13, transformers 5.18, CPU): 9.5e-7
      at most.
"""
import argparse
import json
import os
import shutil
import struct
import sys

INPUT_KEYS = ('input_ids', 'attention_mask', 'token_type_ids', 'masked_input_ids', 'mlm_labels', 'ptuning_input_ids')


def read_header(path):
    """A safetensors file's header (name -> dtype, shape, data_offsets) and where its data starts."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop('__metadata__', None)
    return header, 8 + n


def write_subset(src, dst, keys):
    """Copies the tensors named in keys (those present) from one safetensors file to a new one, bytes unchanged."""
    header, start = read_header(src)
    names = [k for k in keys if k in header]
    out_header, blobs, offset = {}, [], 0
    with open(src, 'rb') as f:
        for k in names:
            b, e = header[k]['data_offsets']
            f.seek(start + b)
            blobs.append(f.read(e - b))
            out_header[k] = {'dtype': header[k]['dtype'], 'shape': header[k]['shape'],
                             'data_offsets': [offset, offset + e - b]}
            offset += e - b
    text = json.dumps(out_header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(dst, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    return names


def cmd_inputs(args):
    if not args.pairs or len(args.pairs) % 2:
        print('hf_references: inputs takes MODEL_DIR REFERENCE pairs', file=sys.stderr)
        return 2
    os.makedirs(args.out_dir, exist_ok=True)
    for model_dir, reference in zip(args.pairs[::2], args.pairs[1::2]):
        name = os.path.basename(os.path.normpath(model_dir))
        model_out = os.path.join(args.out_dir, name)
        os.makedirs(model_out, exist_ok=True)
        for f in ('config.json', 'model.safetensors'):
            shutil.copyfile(os.path.join(model_dir, f), os.path.join(model_out, f))
        names = write_subset(reference, os.path.join(args.out_dir, name + '_inputs.safetensors'), INPUT_KEYS)
        print('%s: config.json, model.safetensors; inputs %s' % (name, ', '.join(names)))
    return 0


def compute(model_dir, inputs):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM
    causal = AutoConfig.from_pretrained(model_dir).model_type == 'gpt2'
    cls = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    model = cls.from_pretrained(model_dir).float().eval()  # (no dtype argument: its name changed across versions)
    extra = {'token_type_ids': inputs['token_type_ids']} if 'token_type_ids' in inputs else {}
    with torch.no_grad():
        out = model(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'], output_hidden_states=True,
                    **extra)
    result = {'embedding_output': out.hidden_states[0], 'last_hidden': out.hidden_states[-1], 'logits': out.logits}
    if causal:
        ids = inputs['ptuning_input_ids']
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        result['ptuning_loss'] = loss.detach()
        result['ptuning_grad_rows_1_8'] = model.get_input_embeddings().weight.grad[1:9]
    else:
        with torch.no_grad():
            result['mlm_loss'] = model(input_ids=inputs['masked_input_ids'], attention_mask=inputs['attention_mask'],
                                       labels=inputs['mlm_labels'], **extra).loss
    return {k: (v.reshape(1) if v.dim() == 0 else v).detach().contiguous() for k, v in result.items()}


def fixture_path(compare, name):
    for c in compare:
        if os.path.isfile(c) and os.path.basename(c).startswith((name + '_', name.replace('-', '_') + '_')):
            return c
        for n in (name, name.replace('-', '_')):
            p = os.path.join(c, n + '_reference.safetensors')
            if os.path.isdir(c) and os.path.isfile(p):
                return p
    return None


def cmd_reference(args):
    import torch
    import transformers
    from safetensors.torch import load_file, save_file
    transformers.logging.disable_progress_bar()
    torch.manual_seed(0)
    out_dir = args.out or args.in_dir
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(f[:-len('_inputs.safetensors')] for f in os.listdir(args.in_dir)
                   if f.endswith('_inputs.safetensors'))
    if not names:
        print('hf_references: no NAME_inputs.safetensors in %s' % args.in_dir, file=sys.stderr)
        return 1
    worst, missing = 0.0, []
    for name in names:
        inputs = load_file(os.path.join(args.in_dir, name + '_inputs.safetensors'))
        outputs = compute(os.path.join(args.in_dir, name), inputs)
        save_file({**inputs, **outputs}, os.path.join(out_dir, name + '_reference.safetensors'))
        line = '%s: %s' % (name, ', '.join('%s %s' % (k, list(v.shape)) for k, v in outputs.items()))
        if args.compare:
            path = fixture_path(args.compare, name)
            if path is None:
                missing.append(name)
            else:
                fixture = load_file(path)
                diffs = {k: (v - fixture[k]).abs().max().item() for k, v in outputs.items()}
                worst = max([worst] + list(diffs.values()))
                line += '; vs %s: %s' % (os.path.basename(path), ', '.join('%s %.2e' % kv for kv in diffs.items()))
        print(line, flush=True)
    if missing:
        print('hf_references: no fixture to compare for %s' % ', '.join(missing), file=sys.stderr)
        return 1
    if args.compare and not worst <= 1e-5:
        print('hf_references: differs from the fixtures by %.3e (more than 1e-5)' % worst, file=sys.stderr)
        return 1
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    a = sub.add_parser('inputs')
    a.add_argument('out_dir')
    a.add_argument('pairs', nargs='*')
    r = sub.add_parser('reference')
    r.add_argument('in_dir')
    r.add_argument('--out', default=None)
    r.add_argument('--compare', nargs='+', default=None)
    args = p.parse_args()
    return cmd_inputs(args) if args.cmd == 'inputs' else cmd_reference(args)


if __name__ == '__main__':
    sys.exit(main())
