#!/usr/bin/env python3
"""The Hugging Face side of the GPU check (scripts/gpu-check.sh): the work native/tests/core_bench.cc does, with
transformers' BertForMaskedLM in PyTorch eager mode, on the same pre-tokenized inputs (scripts/gpu-inputs.js).

  hf_bench.py bench MODEL_DIR INPUTS.json [--device cuda] [--batch-sizes 1,8,32,128] [--max-batches 300]
              [--warmup 2] [--precisions fp32,bf16] [--limit N] [--train-steps 20] [--train-warmup 2]
              [--variants full,mask-head] [--attn eager] [--no-score] [--no-train] [--seed N] [--out result.json]
  hf_bench.py make-base OUT_DIR [--like models/zh-mini-mlm] [--seed 0]

bench, zero-shot scoring: the batches are the length-sorted, padded ones of core_bench (the same evenly spaced
subset where a batch size has more than --max-batches); variant `full` is the usual HF call (model(...).logits,
full-vocabulary logits at every position, then the [MASK] rows), `mask-head` runs model.bert and the MLM head
only at the [MASK] rows (what our core does). bf16 is torch.autocast (weights stay fp32), as in the core.
Training: the step of lib/bench/ours.ts and core_bench — CE over the verbalizer candidates at the [MASK] plus MLM
CE at the pre-drawn masked tokens, backward, gradient clipping at 1, torch.optim.AdamW (lr from the inputs,
weight decay 0.01 except biases and LayerNorm weights), dropout on, batches prepared on the device beforehand;
torch is seeded with --seed before each precision's model is loaded, by default the inputs' train.seed (which
scripts/gpu-inputs.js writes from the options table's seed default, the seed `pet bench` trains with).
The last stdout line is a JSON summary; --out gets it with per-example labels and label scores.

make-base: a randomly initialised BertForMaskedLM of bert-base-chinese's shape (hidden 768, 12 layers, 12 heads,
intermediate 3072, vocab 21128, 512 positions), saved with save_pretrained (safetensors) plus the tokenizer files
of --like.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time


def log(msg):
    print('hf_bench: ' + msg, file=sys.stderr, flush=True)


def read_inputs(path, limit):
    with open(path, encoding='utf-8') as f:
        j = json.load(f)
    examples = j['examples'][:limit] if limit else j['examples']
    n = len(examples)
    steps = [s for s in j['train']['steps'] if all(r < n for r in s['rows'])]
    return j, examples, steps


def length_buckets(examples, bs):
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i]['ids']), i))
    return [order[i:i + bs] for i in range(0, len(order), bs)]


def pick_batches(batches, max_batches):
    n = len(batches)
    if max_batches <= 0 or n <= max_batches:
        return batches
    return [batches[k * n // max_batches] for k in range(max_batches)]


def percentile(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    pos = p / 100.0 * (len(xs) - 1)
    lo = int(math.floor(pos))
    hi = min(len(xs) - 1, lo + 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def label_scores(j, logits, log_z):
    """logits: per slot a list of C candidate logits; log_z: per slot (lib/pet/label-scores.ts defaults)."""
    out = []
    for words in j['words']:
        total = 0.0
        for w in words:
            s = 0.0
            for slot, c in enumerate(w):
                s += logits[slot][c]
                if j['slots'] != 1:
                    s -= log_z[slot]
            total += s
        out.append(total / len(words))
    return out


class Runner:
    def __init__(self, args):
        import torch
        self.torch = torch
        self.args = args
        self.device = torch.device(args.device)

    def sync(self):
        if self.device.type == 'cuda':
            self.torch.cuda.synchronize()

    def load(self, model_dir):
        from transformers import BertForMaskedLM
        model = BertForMaskedLM.from_pretrained(model_dir, attn_implementation=self.args.attn)
        return model.float().to(self.device)

    def batch(self, j, examples, rows, mlm=None):
        torch = self.torch
        T = max(len(examples[r]['ids']) for r in rows)
        pad = j['special']['pad']
        ids = [examples[r]['ids'] + [pad] * (T - len(examples[r]['ids'])) for r in rows]
        types = [examples[r].get('types', [0] * len(examples[r]['ids'])) + [0] * (T - len(examples[r]['ids'])) for r in rows]
        att = [[1] * len(examples[r]['ids']) + [0] * (T - len(examples[r]['ids'])) for r in rows]
        if mlm:
            for k in range(0, len(mlm), 2):
                ids[mlm[k]][mlm[k + 1]] = j['special']['mask']
        d = self.device
        return (torch.tensor(ids, dtype=torch.long, device=d), torch.tensor(types, dtype=torch.long, device=d),
                torch.tensor(att, dtype=torch.long, device=d))

    @staticmethod
    def mask_pairs(examples, rows):
        r, c = [], []
        for b, ex in enumerate(rows):
            for col in examples[ex]['mask']:
                r.append(b)
                c.append(col)
        return r, c

    def autocast(self, bf16):
        torch = self.torch
        if bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return torch.autocast(device_type=self.device.type, enabled=False)

    def score(self, model, j, examples, bf16, variant):
        torch = self.torch
        a = self.args
        model.eval()
        cands = torch.tensor(j['candidates'], dtype=torch.long, device=self.device)
        S = j['slots']
        n = len(examples)
        labels = [-1] * n
        scores = [None] * n
        changes = 0
        by_bs = []
        best, best_bs = 0.0, 0
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()

        def run(rows, record):
            nonlocal changes
            ids, types, att = self.batch(j, examples, rows)
            r, c = self.mask_pairs(examples, rows)
            r = torch.tensor(r, device=self.device)
            c = torch.tensor(c, device=self.device)
            with torch.inference_mode(), self.autocast(bf16):
                if variant == 'full':
                    logits = model(input_ids=ids, token_type_ids=types, attention_mask=att).logits[r, c]
                else:
                    hidden = model.bert(input_ids=ids, token_type_ids=types, attention_mask=att)[0]
                    logits = model.cls(hidden[r, c])
                logits = logits.float()
                cl = logits.index_select(1, cands).cpu().tolist()
                lz = torch.logsumexp(logits, 1).cpu().tolist()
            if not record:
                return
            for k, ex in enumerate(rows):
                ls = label_scores(j, [cl[k * S + s] for s in range(S)], [lz[k * S + s] for s in range(S)])
                label = max(range(len(ls)), key=lambda i: ls[i])
                if labels[ex] >= 0 and labels[ex] != label:
                    changes += 1
                labels[ex] = label
                scores[ex] = ls

        for bs in a.batch_sizes:
            everything = length_buckets(examples, bs)
            batches = pick_batches(everything, a.max_batches)
            for rows in batches[:a.warmup]:
                run(rows, False)
            self.sync()
            lat = []
            sentences = padded = real = 0
            t0 = time.perf_counter()
            for rows in batches:
                tb = time.perf_counter()
                run(rows, True)
                lat.append((time.perf_counter() - tb) * 1000)
                T = max(len(examples[r]['ids']) for r in rows)
                padded += T * len(rows)
                real += sum(len(examples[r]['ids']) for r in rows)
                sentences += len(rows)
            self.sync()
            secs = time.perf_counter() - t0
            rate = sentences / secs
            if rate > best:
                best, best_bs = rate, bs
            by_bs.append({'batch_size': bs, 'batches': len(batches), 'of_batches': len(everything),
                          'sentences': sentences, 'seconds': secs, 'sentences_per_s': rate,
                          'p50_ms': percentile(lat, 50), 'p95_ms': percentile(lat, 95),
                          'padded_tokens': padded, 'real_tokens': real})
            log('score %s %s batch %d: %.1f sentences/s (%d of %d batches, %.2f s)' % (
                variant, 'bf16' if bf16 else 'fp32', bs, rate, len(batches), len(everything), secs))
        covered = sum(1 for x in labels if x >= 0)
        labeled = sum(1 for i, x in enumerate(labels) if x >= 0 and examples[i].get('gold', -1) >= 0)
        correct = sum(1 for i, x in enumerate(labels) if x >= 0 and x == examples[i].get('gold', -1))
        res = {'by_batch_size': by_bs, 'best_batch_size': best_bs, 'best_sentences_per_s': best,
               'accuracy': correct / labeled if labeled else None, 'correct': correct, 'labeled': labeled,
               'covered': covered, 'label_changes': changes}
        if self.device.type == 'cuda':
            res['peak_memory_mb'] = torch.cuda.max_memory_allocated() / 2 ** 20
        return res, {'labels': labels, 'scores': scores}

    def train(self, model_dir, j, examples, steps, bf16):
        torch = self.torch
        F = torch.nn.functional
        a = self.args
        if not steps:
            raise RuntimeError('the inputs hold no training batches (or --limit removed them all)')
        torch.manual_seed(a.seed)
        model = self.load(model_dir)  # fresh weights for each precision
        model.train()
        decay, plain = [], []
        for name, p in model.named_parameters():
            (plain if name.endswith('.bias') or 'LayerNorm.weight' in name else decay).append(p)
        opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': plain, 'weight_decay': 0.0}],
                                lr=j['train'].get('lr', 1e-4), betas=(0.9, 0.999), eps=1e-8)
        cands = torch.tensor(j['candidates'], dtype=torch.long, device=self.device)
        total = a.train_warmup + a.train_steps
        prepared = []
        for s in range(total):
            st = steps[s % len(steps)]
            rows, mlm = st['rows'], st['mlm']
            ids, types, att = self.batch(j, examples, rows, mlm)
            vr = mlm[0::2]
            vc = mlm[1::2]
            vt = [examples[rows[b]]['ids'][c] for b, c in zip(vr, vc)]
            cr, cc = self.mask_pairs(examples, rows)
            cl = [j['words'][examples[r]['gold']][0][slot] for r in rows for slot in range(len(examples[r]['mask']))]
            t = lambda x: torch.tensor(x, dtype=torch.long, device=self.device)
            prepared.append((ids, types, att, t(vr), t(vc), t(vt), t(cr), t(cc), t(cl), ids.shape[1]))
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()

        def step(p):
            ids, types, att, vr, vc, vt, cr, cc, cl, _ = p
            opt.zero_grad(set_to_none=True)
            with self.autocast(bf16):
                logits = model(input_ids=ids, token_type_ids=types, attention_mask=att).logits
                loss = F.cross_entropy(logits[cr, cc].index_select(1, cands).float(), cl)
                if vr.numel() > 0:
                    loss = loss + F.cross_entropy(logits[vr, vc].float(), vt)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss.item()

        for p in prepared[:a.train_warmup]:
            step(p)
        self.sync()
        losses, lat = [], []
        t0 = time.perf_counter()
        for p in prepared[a.train_warmup:]:
            tb = time.perf_counter()
            losses.append(step(p))
            lat.append((time.perf_counter() - tb) * 1000)
        self.sync()
        secs = time.perf_counter() - t0
        res = {'batch_size': j['train']['batch_size'], 'steps': a.train_steps, 'seconds': secs,
               'steps_per_s': a.train_steps / secs, 'p50_ms': percentile(lat, 50), 'p95_ms': percentile(lat, 95),
               'mean_seq_len': sum(p[-1] for p in prepared[a.train_warmup:]) / a.train_steps,
               'first_loss': losses[0], 'last_loss': losses[-1], 'losses': losses}
        if self.device.type == 'cuda':
            res['peak_memory_mb'] = torch.cuda.max_memory_allocated() / 2 ** 20
        log('train %s: %.2f steps/s (batch %d, %d steps, loss %.4f -> %.4f)' % (
            'bf16' if bf16 else 'fp32', res['steps_per_s'], res['batch_size'], a.train_steps, losses[0], losses[-1]))
        del model, opt, prepared
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()
        return res


def bench(a):
    import torch
    import transformers
    r = Runner(a)
    if r.device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('CUDA was asked for but torch.cuda.is_available() is False')
    j, examples, steps = read_inputs(a.inputs, a.limit)
    if a.seed is None:
        a.seed = j['train'].get('seed')
        if a.seed is None:
            raise RuntimeError('the inputs hold no train.seed (scripts/gpu-inputs.js writes it): pass --seed')
    precisions = a.precisions or (['fp32', 'bf16'] if r.device.type == 'cuda' else ['fp32'])
    result = {'side': 'hf', 'model': a.model, 'device': a.device, 'torch': torch.__version__,
              'transformers': transformers.__version__, 'attn': a.attn, 'threads': torch.get_num_threads(),
              'n': len(examples), 'max_batches': a.max_batches, 'seed': a.seed, 'score': {}, 'train': {}, 'errors': []}
    if r.device.type == 'cuda':
        result['device_name'] = torch.cuda.get_device_name(r.device)
        result['tf32_matmul'] = torch.backends.cuda.matmul.allow_tf32
    per_example = {}
    t0 = time.perf_counter()
    model = r.load(a.model)
    r.sync()
    result['load_s'] = time.perf_counter() - t0
    c = model.config
    result['config'] = {'hidden': c.hidden_size, 'layers': c.num_hidden_layers, 'heads': c.num_attention_heads,
                        'intermediate': c.intermediate_size, 'vocab': c.vocab_size}
    rc = 0
    if not a.no_score:
        for variant in a.variants:
            key = 'score' if variant == 'full' else 'score_' + variant.replace('-', '_')
            result.setdefault(key, {})
            for p in precisions:
                try:
                    res, pe = r.score(model, j, examples, p == 'bf16', variant)
                    result[key][p] = res
                    per_example.setdefault(variant, {})[p] = pe
                except Exception as e:  # report and go on with the next measurement
                    result['errors'].append('score %s %s: %s: %s' % (variant, p, type(e).__name__, e))
                    rc = 1
    del model
    if r.device.type == 'cuda':
        torch.cuda.empty_cache()
    if not a.no_train:
        for p in precisions:
            try:
                result['train'][p] = r.train(a.model, j, examples, steps, p == 'bf16')
            except Exception as e:
                result['errors'].append('train %s: %s: %s' % (p, type(e).__name__, e))
                rc = 1
    if a.out:
        full = dict(result)
        full['per_example'] = per_example
        with open(a.out, 'w', encoding='utf-8') as f:
            json.dump(full, f)
            f.write('\n')
    print(json.dumps(result), flush=True)
    return rc


def make_base(a):
    import torch
    from transformers import BertConfig, BertForMaskedLM
    torch.manual_seed(a.seed)
    cfg = BertConfig(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, hidden_act='gelu',
                     layer_norm_eps=1e-12, pad_token_id=0, tie_word_embeddings=True)
    model = BertForMaskedLM(cfg)
    os.makedirs(a.out_dir, exist_ok=True)
    model.save_pretrained(a.out_dir)  # safetensors by default (transformers >= 4.35)
    for f in ('vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'):
        src = os.path.join(a.like, f)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(a.out_dir, f))
    files = sorted(os.listdir(a.out_dir))
    if not any(f.endswith('.safetensors') for f in files):
        raise RuntimeError('save_pretrained wrote no safetensors file: %s' % files)
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({'out_dir': a.out_dir, 'parameters': n, 'files': files}), flush=True)
    return 0


def int_list(s):
    xs = [int(x) for x in s.split(',') if x.strip()]
    if not xs or any(x < 1 for x in xs):
        raise argparse.ArgumentTypeError('a comma-separated list of integers >= 1')
    return xs


def str_list(s):
    return [x.strip() for x in s.split(',') if x.strip()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    b = sub.add_parser('bench')
    b.add_argument('model')
    b.add_argument('inputs')
    b.add_argument('--device', default='cuda')
    b.add_argument('--batch-sizes', type=int_list, default=[1, 8, 32, 128])
    b.add_argument('--max-batches', type=int, default=300)
    b.add_argument('--warmup', type=int, default=2)
    b.add_argument('--precisions', type=str_list, default=None)
    b.add_argument('--variants', type=str_list, default=['full', 'mask-head'])
    b.add_argument('--attn', default='eager')
    b.add_argument('--limit', type=int, default=0)
    b.add_argument('--train-steps', type=int, default=20)
    b.add_argument('--train-warmup', type=int, default=2)
    b.add_argument('--no-score', action='store_true')
    b.add_argument('--no-train', action='store_true')
    b.add_argument('--threads', type=int, default=0)
    b.add_argument('--seed', type=int, default=None,
                   help="training's torch seed (default: the inputs' train.seed, the options table's default)")
    b.add_argument('--out', default='')
    m = sub.add_parser('make-base')
    m.add_argument('out_dir')
    m.add_argument('--like', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'models', 'zh-mini-mlm'))
    m.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == 'make-base':
        return make_base(a)
    for p in a.precisions or []:
        if p not in ('fp32', 'bf16'):
            ap.error('precision must be fp32 or bf16, got ' + p)
    for v in a.variants:
        if v not in ('full', 'mask-head'):
            ap.error('variant must be full or mask-head, got ' + v)
    if a.train_steps < 1:
        ap.error('--train-steps must be >= 1')
    if a.threads > 0:
        import torch
        torch.set_num_threads(a.threads)
    try:
        return bench(a)
    except Exception as e:
        print('hf_bench: error: %s: %s' % (type(e).__name__, e), file=sys.stderr)
        print(json.dumps({'side': 'hf', 'model': a.model, 'fatal': '%s: %s' % (type(e).__name__, e)}), flush=True)
        return 1


if __name__ == '__main__':
    sys.exit(main())
