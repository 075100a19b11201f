#!/usr/bin/env python3
"""Checks `alignscope export --format peft` (and the merged `--format hf`) of LoRA runs with PEFT and transformers
(developer tooling, issue 39; not run by tests).

For the tiny llama, qwen2 and GPT-NeoX fixtures (Hugging Face directories made by transformers,
Tests/HFModelsTests/Fixtures) and for SmolLM2-135M-Instruct (the GGUF, which transformers reads with `gguf_file`):
1. trains a LoRA run with AlignScope (rank 8 on every projection, alpha 16, dropout 0.05, 3 SFT steps at lr 1e-3),
   exports its adapters (`--format peft`) and its merged weights (`--format hf`);
2. loads the base with transformers and the adapter with `PeftModel.from_pretrained` (adapters active, not merged),
   and the merged directory with transformers;
3. scores a few (prompt, response) pairs token by token with both, beside AlignScope's `score --tokens` of the merged
   directory; and compares PEFT's `merge_and_unload()` weights with the merged directory's.
Writes docs/perf/peft-export-check.json.

Usage: /work/refvenv/bin/python scripts/peft-export-check.py [ALIGNSCOPE_BINARY]
"""
import importlib.metadata
import importlib.util
import json
import pathlib
import subprocess
import sys
import tempfile

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build/release/alignscope")
OUT = ROOT / "docs/perf/peft-export-check.json"
# the pairs, templates and both scorers are hf-export-check.py's
_spec = importlib.util.spec_from_file_location("hf_export_check", ROOT / "scripts/hf-export-check.py")
_hf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hf)
PAIRS, chatml, hh, ours, theirs = _hf.PAIRS, _hf.chatml, _hf.hh, _hf.ours, _hf.theirs


def run_and_export(work, name, model_line, template, data):
    spec = work / f"{name}.json5"
    spec.write_text(f"""{{
  name: "{name}", model: {model_line}, template: "{template}",
  data: {{ train: {{ path: "{ROOT}/{data}-train.jsonl" }}, probes: {{ path: "{ROOT}/{data}-probes.jsonl", categories: {{ chosen: "chosen" }} }} }},
  train: {{ steps: 3, batch_size: 2, lr: 1e-3, max_length: 128, lora: {{ rank: 8, alpha: 16, dropout: 0.05 }} }},
  eval: {{ every: 3, at_start: false }},
}}
""")
    db = work / f"{name}.sqlite"
    subprocess.run([BIN, "run", str(spec), "--db", str(db)], check=True, capture_output=True)
    for fmt in ("peft", "hf"):
        subprocess.run([BIN, "export", "--db", str(db), "--run", name, "--format", fmt, "--out", str(work / f"{name}-{fmt}")], check=True)
    return work / f"{name}-peft", work / f"{name}-hf"


def check(base_loader, adapter, merged, wrap):
    tok = AutoTokenizer.from_pretrained(merged)
    peft_model = PeftModel.from_pretrained(base_loader(), adapter).eval()
    merged_model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    result = {"ids_equal": True, "tokens": 0, "max_abs_diff_peft_vs_alignscope": 0.0, "max_abs_diff_merged_vs_alignscope": 0.0,
              "max_abs_diff_peft_vs_merged": 0.0}
    for prompt, response in PAIRS:
        p, r = wrap(prompt, response)
        ids_ours, lp_ours = ours(merged, p, r)
        ids_peft, lp_peft = theirs(tok, peft_model, p, r)
        _, lp_merged = theirs(tok, merged_model, p, r)
        result["ids_equal"] &= ids_ours == ids_peft
        result["tokens"] += len(ids_ours)
        if ids_ours == ids_peft:
            result["max_abs_diff_peft_vs_alignscope"] = max(result["max_abs_diff_peft_vs_alignscope"], max(abs(a - b) for a, b in zip(lp_peft, lp_ours)))
            result["max_abs_diff_merged_vs_alignscope"] = max(result["max_abs_diff_merged_vs_alignscope"], max(abs(a - b) for a, b in zip(lp_merged, lp_ours)))
        result["max_abs_diff_peft_vs_merged"] = max(result["max_abs_diff_peft_vs_merged"], max(abs(a - b) for a, b in zip(lp_peft, lp_merged)))
    # PEFT's own merge against ours, weight by weight
    mine = load_file(str(merged / "model.safetensors"))
    unloaded = peft_model.merge_and_unload().state_dict()
    worst, adapted = 0.0, 0
    for name, value in mine.items():
        if name in unloaded:
            worst = max(worst, (unloaded[name].float() - value.float()).abs().max().item())
            adapted += 1
    result["weights_compared"] = adapted
    result["max_abs_weight_diff_peft_merge_vs_ours"] = worst
    result["adapter_modules"] = json.loads((adapter / "adapter_config.json").read_text())["target_modules"]
    return result


def main() -> None:
    report = {"versions": {p: importlib.metadata.version(p) for p in ("torch", "transformers", "peft", "safetensors")}}
    fixtures = ROOT / "Tests/HFModelsTests/Fixtures"
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for name, template, wrap in [("llama-tiny", "chatml", chatml), ("qwen2-tiny", "chatml", chatml), ("gpt-neox-tiny", "hh", hh)]:
            base = fixtures / name
            adapter, merged = run_and_export(work, name, f'{{ hf: "{base}" }}', template, "Tests/ExperimentsTests/Fixtures/tiny")
            report[name] = check(lambda: AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter, merged, wrap)
        gguf = ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
        adapter, merged = run_and_export(work, "smollm2", f'{{ gguf: "{gguf}" }}', "chatml", "experiments/data/helpful")
        # transformers dequantises the GGUF itself (gguf-py): the base as PEFT sees it
        report["smollm2-gguf"] = check(lambda: AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32),
                                       adapter, merged, chatml)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
