#!/usr/bin/env python3
"""Summarises the files scripts/gpu-check.sh leaves in its results folder into summary.json and report.md
(markdown, also printed). Standard library only.

  report.py RESULTS_DIR
"""
import json
import os
import re
import sys


def load(path):
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        # a log whose last JSON line is the summary
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith('{'):
                try:
                    return json.loads(line)
                except ValueError:
                    pass
    return None


def fmt(x, digits=1):
    if x is None:
        return '—'
    if isinstance(x, float):
        return ('%.' + str(digits) + 'f') % x
    return str(x)


def ratio(a, b):
    return a / b if a and b else None


def agreement(ours, hf, prec, variant='full'):
    """Labels (and label scores) of ours vs HF on the examples both covered."""
    try:
        a = ours['per_example'][prec]
        b = hf['per_example'][variant][prec]
    except (KeyError, TypeError):
        return None
    same = of = 0
    max_diff = 0.0
    for la, lb, sa, sb in zip(a['labels'], b['labels'], a['scores'], b['scores']):
        if la < 0 or lb < 0:
            continue
        of += 1
        same += la == lb
        if sa and sb:
            max_diff = max(max_diff, max(abs(x - y) for x, y in zip(sa, sb)))
    return {'same': same, 'of': of, 'max_abs_label_score_diff': max_diff} if of else None


def parity(path):
    out = []
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                m = re.match(r'^(.*?)\s+([0-9.]+e[-+][0-9]+)\s+\(tolerance ([^)]*)\)(.*)$', line.rstrip())
                if m:
                    out.append({'check': m.group(1).strip(), 'error': float(m.group(2)), 'tolerance': m.group(3),
                                'status': m.group(4).strip() or 'ok'})
                elif line.startswith('core_test:') or line.startswith('error:') or ' skipped: ' in line:
                    out.append({'check': line.strip(), 'error': None, 'tolerance': None, 'status': ''})
    except OSError:
        return None
    return out


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = argv[1]
    env = load(os.path.join(d, 'env.json')) or {}
    phases = []
    try:
        with open(os.path.join(d, 'phases.jsonl'), encoding='utf-8') as f:
            phases = [json.loads(line) for line in f if line.strip()]
    except OSError:
        pass
    meta = load(os.path.join(d, 'meta.json')) or {}
    found = set()
    for f in os.listdir(d):
        m = re.match(r'^(ours|hf)-(.+)\.json$', f)
        if m:
            found.add(m.group(2))
    order = (meta.get('models') or '').split()
    models = [m for m in order if m in found] + sorted(found - set(order))
    summary = {'env': env, 'meta': meta, 'phases': phases, 'parity': {}, 'models': {}}
    md = ['# GPU check', '']
    dev = env.get('device_name') or env.get('device') or '?'
    md.append('Device: **%s** (%s); torch %s (CUDA %s), transformers %s; build: %s.' % (
        dev, env.get('device', '?'), env.get('torch', '?'), env.get('torch_cuda', '?'), env.get('transformers', '?'),
        meta.get('build', '?')))
    md.append('')

    for name in ('fp32', 'bf16'):
        p = parity(os.path.join(d, 'parity-%s.log' % name))
        if p is not None:
            summary['parity'][name] = p
    if summary['parity']:
        md += ['## Parity with the HF fixtures (core_test on the device)', '', '| run | check | error | tolerance | status |',
               '|---|---|---|---|---|']
        for name, rows in summary['parity'].items():
            for r in rows:
                md.append('| %s | %s | %s | %s | %s |' % (name, r['check'], '%.3e' % r['error'] if r['error'] is not None else '',
                                                         r['tolerance'] or '', r['status']))
        md.append('')

    score_rows, bs_rows, train_rows, agree_rows = [], [], [], []
    for m in models:
        ours = load(os.path.join(d, 'ours-%s.json' % m))
        hf = load(os.path.join(d, 'hf-%s.json' % m))
        entry = {'ours': None, 'hf': None, 'agreement': {}}
        for side, res in (('ours', ours), ('hf', hf)):
            if res:
                entry[side] = {k: v for k, v in res.items() if k != 'per_example'}
        for prec in ('fp32', 'bf16'):
            o = (ours or {}).get('score', {}).get(prec)
            h = (hf or {}).get('score', {}).get(prec)
            hm = (hf or {}).get('score_mask_head', {}).get(prec)
            if not (o or h or hm):
                continue
            ob = o and o['best_sentences_per_s']
            hb = h and h['best_sentences_per_s']
            hmb = hm and hm['best_sentences_per_s']
            score_rows.append('| %s | %s | %s (b%s) | %s (b%s) | %s | %s (b%s) | %s | %s / %s |' % (
                m, prec, fmt(ob), o and o['best_batch_size'], fmt(hb), h and h['best_batch_size'], fmt(ratio(ob, hb), 2),
                fmt(hmb), hm and hm['best_batch_size'], fmt(ratio(ob, hmb), 2),
                fmt(o and o['accuracy'], 4), fmt(h and h['accuracy'], 4)))
            sizes = []
            for res in (o, h, hm):
                for x in (res or {}).get('by_batch_size', []):
                    if x['batch_size'] not in sizes:
                        sizes.append(x['batch_size'])
            for bs in sizes:
                def at(res):
                    for x in (res or {}).get('by_batch_size', []):
                        if x['batch_size'] == bs:
                            return x
                    return None
                xo, xh, xm = at(o), at(h), at(hm)
                sub = xo or xh or xm
                bs_rows.append('| %s | %s | %d | %s/%s | %s | %s | %s | %s | %s |' % (
                    m, prec, bs, sub['batches'], sub['of_batches'], fmt(xo and xo['sentences_per_s']),
                    fmt(xh and xh['sentences_per_s']), fmt(xm and xm['sentences_per_s']),
                    fmt(xo and xo['p50_ms'], 2), fmt(xh and xh['p50_ms'], 2)))
            ag = agreement(ours, hf, prec)
            if ag:
                entry['agreement'][prec] = ag
                agree_rows.append('| %s | %s | %d / %d | %.3e |' % (m, prec, ag['same'], ag['of'], ag['max_abs_label_score_diff']))
        for prec in ('fp32', 'bf16'):
            o = (ours or {}).get('train', {}).get(prec)
            h = (hf or {}).get('train', {}).get(prec)
            if not (o or h):
                continue
            train_rows.append('| %s | %s | %s | %s | %s | %s | %s → %s | %s → %s |' % (
                m, prec, fmt(o and o['steps_per_s'], 2), fmt(h and h['steps_per_s'], 2),
                fmt(ratio(o and o['steps_per_s'], h and h['steps_per_s']), 2), fmt(o and o['mean_seq_len']),
                fmt(o and o['first_loss'], 3), fmt(o and o['last_loss'], 3), fmt(h and h['first_loss'], 3),
                fmt(h and h['last_loss'], 3)))
        errors = []
        for side, res in (('ours', ours), ('hf', hf)):
            if res is None:
                errors.append('%s: no result' % side)
                continue
            if res.get('fatal'):
                errors.append('%s: %s' % (side, res['fatal']))
            errors += ['%s: %s' % (side, e) for e in res.get('errors', [])]
        entry['errors'] = errors
        summary['models'][m] = entry

    if score_rows:
        md += ['## Zero-shot scoring, sentences/s at the best batch size', '',
               'P1 `[MASK]满意。{text}` (很/不), length-sorted padded batches. HF eager "full" = `model(...).logits` at every '
               'position (the usual call); "head at [MASK]" = `model.bert` + `model.cls` at the [MASK] rows only.', '',
               '| model | precision | ours | HF full | ours/HF | HF head at [MASK] | ours/HF | accuracy ours / HF |',
               '|---|---|---|---|---|---|---|---|'] + score_rows + ['']
        md += ['### By batch size (sentences/s; batches timed / all)', '',
               '| model | precision | batch | batches | ours | HF full | HF head at [MASK] | ours p50 ms | HF p50 ms |',
               '|---|---|---|---|---|---|---|---|---|'] + bs_rows + ['']
    if agree_rows:
        md += ['## Labels, ours vs HF (full)', '', '| model | precision | same labels | max abs label-score difference |',
               '|---|---|---|---|'] + agree_rows + ['']
    if train_rows:
        md += ['## PET training steps/s (batch 32, candidate CE + MLM CE, AdamW, clip 1)', '',
               '| model | precision | ours | HF | ours/HF | mean seq len | ours loss | HF loss |',
               '|---|---|---|---|---|---|---|---|'] + train_rows + ['']
    errs = [(m, e) for m, v in summary['models'].items() for e in v.get('errors', [])]
    if errs:
        md += ['## Errors', ''] + ['- %s: %s' % (m, e) for m, e in errs] + ['']
    if phases:
        md += ['## Phases', '', '| phase | status | seconds | limit |', '|---|---|---|---|']
        for p in phases:
            md.append('| %s | %s | %s | %s |' % (p.get('phase'), p.get('status'), fmt(p.get('seconds'), 0), p.get('limit')))
        md.append('')
    text = '\n'.join(md)
    with open(os.path.join(d, 'summary.json'), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=1)
        f.write('\n')
    with open(os.path.join(d, 'report.md'), 'w', encoding='utf-8') as f:
        f.write(text + '\n')
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
