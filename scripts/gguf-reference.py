#!/usr/bin/env python3
"""Reference numbers for the GGUF module's dequantisation test (developer tooling, not run by tests).

Dequantises a few tensors of the default model with the `gguf` Python package (an implementation
independent of AlignScope) and writes their shape, sum, sum of squares and first values to
Tests/GGUFTests/Fixtures/reference-dequant.json.

Usage: /work/refvenv/bin/python scripts/gguf-reference.py [MODEL.gguf]
"""
import importlib.metadata
import json
import pathlib
import sys

import numpy as np
import gguf
from gguf.quants import dequantize

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = ROOT / "Tests/GGUFTests/Fixtures/reference-dequant.json"

# One tensor of each type in the file (Q8_0, Q4_1, F32), from the first and last blocks.
NAMES = [
    "token_embd.weight",
    "blk.0.attn_q.weight",
    "blk.0.attn_k.weight",
    "blk.0.ffn_down.weight",
    "blk.0.attn_norm.weight",
    "blk.29.ffn_gate.weight",
    "blk.29.attn_v.weight",
    "output_norm.weight",
]


def main() -> None:
    reader = gguf.GGUFReader(MODEL)
    tensors = {t.name: t for t in reader.tensors}
    out = {"model": pathlib.Path(MODEL).name, "gguf_package": importlib.metadata.version("gguf"), "tensors": []}
    for name in NAMES:
        t = tensors[name]
        values = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        v64 = values.astype(np.float64)
        out["tensors"].append({
            "name": name,
            "type": t.tensor_type.name,
            "dimensions": [int(d) for d in t.shape],  # ne0 first
            "count": int(values.size),
            "sum": float(v64.sum()),
            "sum_squares": float((v64 * v64).sum()),
            "first": [float(x) for x in values[:16]],
            "last": [float(x) for x in values[-4:]],
            # a few values spread through the tensor: (flat index, value)
            "samples": [[int(i), float(values[i])] for i in np.linspace(0, values.size - 1, 9).astype(np.int64)],
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # one line per tensor keeps the fixture diffable
    lines = [json.dumps(t) for t in out.pop("tensors")]
    head = json.dumps(out)[:-1]
    OUT.write_text(head + ', "tensors": [\n' + ",\n".join(lines) + "\n]}\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
