#!/usr/bin/python3
"""Builds test/fixtures/tiny-bert-bin/ (pytorch_model.bin + config.json + expected.json)
from the tiny-bert safetensors reference checkpoint.

Needs torch (Debian's python3-torch): run with /usr/bin/python3, not a pyenv python.

    /usr/bin/python3 scripts/make-bin-fixture.py

The .bin imitates a real (legacy) Hugging Face checkpoint, so that loaders are
exercised on the awkward cases:
  * embeddings LayerNorm saved under the legacy names LayerNorm.gamma / .beta;
  * cls.predictions.decoder.weight is a view sharing storage with
    bert.embeddings.word_embeddings.weight (tied weights, one storage record);
  * bert.encoder.layer.0.intermediate.dense.weight is stored transposed
    (stride (1, 64): non-contiguous in its storage);
  * token_type_embeddings and position_embeddings are two views of one storage,
    the second at a non-zero storage_offset;
  * cls.predictions.bias is an nn.Parameter (pickled via _rebuild_parameter);
  * the OrderedDict carries `_metadata` like module.state_dict() does.

expected.json lists, per tensor in file order: name, dtype, shape, sum (float64
sum of all elements) and wsum (float64 sum of flat[i] * (i % 13 + 1) over the
row-major flattening; unlike sum, it catches wrong strides/offsets).
"""
import collections
import json
import os
import shutil
import struct
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.environ.get("TINY_BERT_DIR", "/work/shared/fixtures/hf-reference/tiny-bert")
OUT = os.path.join(ROOT, "test", "fixtures", "tiny-bert-bin")

ST_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_safetensors(path):
    """Minimal safetensors reader: u64 LE header length, JSON header, raw data."""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen).decode("utf-8"))  # dict keeps file order
        data = f.read()
    out = collections.OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = ST_DTYPES[info["dtype"]]
        buf = bytearray(data[begin:end])
        t = torch.frombuffer(buf, dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def build_state_dict(src):
    sd = collections.OrderedDict()
    for name, t in src.items():
        if name.startswith("bert.embeddings.LayerNorm."):
            name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        sd[name] = t

    # token_type_embeddings [2,32] and position_embeddings [64,32] share one
    # storage; position_embeddings sits at storage_offset 64.
    tt = sd["bert.embeddings.token_type_embeddings.weight"]
    pe = sd["bert.embeddings.position_embeddings.weight"]
    buf = torch.cat([tt.reshape(-1), pe.reshape(-1)])
    sd["bert.embeddings.token_type_embeddings.weight"] = buf[: tt.numel()].view(tt.shape)
    sd["bert.embeddings.position_embeddings.weight"] = buf[tt.numel():].view(pe.shape)
    assert sd["bert.embeddings.position_embeddings.weight"].storage_offset() == tt.numel()

    # Non-contiguous in storage: same values, transposed layout.
    name = "bert.encoder.layer.0.intermediate.dense.weight"
    w = sd[name]
    sd[name] = w.t().contiguous().t()
    assert not sd[name].is_contiguous() and torch.equal(sd[name], w)

    # Parameter (pickled through torch._utils._rebuild_parameter).
    sd["cls.predictions.bias"] = torch.nn.Parameter(sd["cls.predictions.bias"], requires_grad=False)

    # Tied decoder weight: a view of the word embeddings' storage.
    we = sd["bert.embeddings.word_embeddings.weight"]
    sd["cls.predictions.decoder.weight"] = we.view(we.shape)
    assert sd["cls.predictions.decoder.weight"].data_ptr() == we.data_ptr()

    # Like nn.Module.state_dict(): per-module version metadata.
    meta = collections.OrderedDict()
    for prefix in sorted({n.rsplit(".", 1)[0] for n in sd} | {"", "bert", "cls"}):
        meta[prefix] = {"version": 1}
    sd._metadata = meta
    return sd


def describe(sd):
    out = []
    for name, t in sd.items():
        flat = t.detach().reshape(-1).to(torch.float64)
        weights = (torch.arange(flat.numel(), dtype=torch.float64) % 13) + 1
        out.append({
            "name": name,
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "sum": float(flat.sum()),
            "wsum": float((flat * weights).sum()),
        })
    return out


def main():
    src = read_safetensors(os.path.join(SRC, "model.safetensors"))
    sd = build_state_dict(src)
    os.makedirs(OUT, exist_ok=True)
    bin_path = os.path.join(OUT, "pytorch_model.bin")
    torch.save(sd, bin_path)  # zip format, pickle protocol 2
    shutil.copyfile(os.path.join(SRC, "config.json"), os.path.join(OUT, "config.json"))

    # Sanity: torch.load gives back the same thing.
    back = torch.load(bin_path, map_location="cpu")
    assert list(back.keys()) == list(sd.keys())
    for k in sd:
        assert torch.equal(back[k], sd[k]), k

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        # One tensor per line: readable and diff-friendly.
        rows = ",\n".join("  " + json.dumps(r) for r in describe(sd))
        f.write('{"source": "scripts/make-bin-fixture.py",\n "tensors": [\n' + rows + "\n ]}\n")
    print(f"wrote {bin_path} ({os.path.getsize(bin_path)} bytes, {len(sd)} tensors, torch {torch.__version__})")


if __name__ == "__main__":
    sys.exit(main())
