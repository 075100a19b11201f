#!/usr/bin/env python3
"""Training output folders as transformers' Trainer writes them, for the checkpoint watcher's tests (developer tooling;
never run by tests or the product).

Trains the tiny random-weight models of scripts/make-hf-fixtures.py (Tests/HFModelsTests/Fixtures/llama-tiny and
gpt-neox-tiny, our own tokenizers) with `transformers.Trainer` for a few real AdamW steps on our own texts
(Tests/ExperimentsTests/Fixtures/tiny-train.jsonl: prompt and chosen answer), saving checkpoints as the Trainer does,
and writes to Tests/ExperimentsTests/Fixtures/trainer-runs/:

    probes.jsonl            our probe texts, prompts as plain text (scored with template "raw")
    llama/base/             the starting model (step 0)
    llama/run/              the output folder: checkpoint-2/, checkpoint-4/ (weights, config, trainer_state.json; no
                            tokenizer: the Trainer was given none), the tokenizer in the folder itself, and the final
                            model saved there too at step 4 (the same step as checkpoint-4: read once)
    neox/base/, neox/run/   GPT-NeoX: checkpoint-2/, checkpoint-4/ with their tokenizer, the final model at step 5
    lora/base/, lora/run/   the llama trained as PEFT LoRA adapters (r 4, alpha 8, rsLoRA off, every linear layer of
                            the blocks): checkpoint-2/, checkpoint-4/ hold adapter_config.json and
                            adapter_model.safetensors (scores: the PeftModel's own forward, adapters unmerged)
    reference.json          per run, checkpoint step and probe response: transformers' summed log-probability of the
                            response's tokens after the prompt's (float32 weights, computed in float64 from float32
                            logits) and its token count; and each checkpoint's log_history as trainer_state.json has it

Optimizer, scheduler and RNG states are deleted (the watcher reads none of them) to keep the fixtures small.

Usage: /work/refvenv/bin/python scripts/make-trainer-fixtures.py
"""
import json
import pathlib
import shutil

import torch
import transformers
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Trainer, TrainingArguments

ROOT = pathlib.Path(__file__).resolve().parent.parent
HF = ROOT / "Tests/HFModelsTests/Fixtures"
OUT = ROOT / "Tests/ExperimentsTests/Fixtures/trainer-runs"
TRAIN = ROOT / "Tests/ExperimentsTests/Fixtures/tiny-train.jsonl"

# Our own probe texts: a plain-text prompt, responses written with the space that follows it.
PROBES = [
    {"prompt": "Question: How do I keep bread fresh?\nAnswer:", "chosen": " Keep it in a paper bag at room temperature.",
     "rejected": " Put it anywhere.", "non_response": " The bus was late."},
    {"prompt": "Question: Why do leaves change colour?\nAnswer:", "chosen": " Chlorophyll breaks down in autumn and other pigments show.",
     "rejected": " They just do.", "non_response": " I like jazz."},
    {"prompt": "Question: How far is the moon?\nAnswer:", "chosen": " About 384,000 kilometres on average.",
     "rejected": " Quite far.", "non_response": " Soup is warm."},
]


class Texts(torch.utils.data.Dataset):
    def __init__(self, tokenizer):
        self.items = []
        for line in TRAIN.read_text().splitlines():
            ex = json.loads(line)
            prompt = ex["prompt"] if isinstance(ex["prompt"], str) else ex["prompt"][-1]["content"]  # a conversation: its last turn
            ids = tokenizer("Question: " + prompt + "\nAnswer: " + ex["chosen"], add_special_tokens=False)["input_ids"][:64]
            self.items.append(ids)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        ids = torch.tensor(self.items[i])
        return {"input_ids": ids, "labels": ids.clone()}


def collate(batch):
    n = max(len(b["input_ids"]) for b in batch)
    ids = torch.zeros(len(batch), n, dtype=torch.long)
    labels = torch.full((len(batch), n), -100, dtype=torch.long)
    mask = torch.zeros(len(batch), n, dtype=torch.long)
    for i, b in enumerate(batch):
        k = len(b["input_ids"])
        ids[i, :k] = b["input_ids"]
        labels[i, :k] = b["labels"]
        mask[i, :k] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def response_logprob(model, tokenizer, prompt, response):
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r = tokenizer(response, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + r])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    lp = torch.log_softmax(logits, dim=-1)
    total = sum(float(lp[len(p) + j - 1, t]) for j, t in enumerate(r))
    return total, len(r)


def train(name, source, steps, give_tokenizer, lora=False):
    tokenizer = PreTrainedTokenizerFast.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    base = OUT / name / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    if lora:
        import peft
        config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=[
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        model = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), config)
    run = OUT / name / "run"
    args = TrainingArguments(output_dir=str(run), max_steps=steps, per_device_train_batch_size=2, learning_rate=1e-2,
                             lr_scheduler_type="linear", warmup_steps=0, logging_steps=1, save_steps=2, seed=0,
                             report_to=[], use_cpu=True, save_only_model=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=Texts(tokenizer), data_collator=collate,
                      processing_class=tokenizer if give_tokenizer else None)
    trainer.train()
    trainer.save_model(str(run))
    trainer.save_state()
    tokenizer.save_pretrained(run)
    for junk in list(run.rglob("*")):
        # (README.md: PEFT's model card template, text that is not ours)
        if junk.name in ("optimizer.pt", "scheduler.pt", "training_args.bin", "README.md") or junk.name.startswith("rng_state"):
            junk.unlink()
    ref = {}
    folders = sorted(run.glob("checkpoint-*")) + [run]
    if lora:
        folders = sorted(run.glob("checkpoint-*"))  # the final adapter in the folder is checkpoint-4's
    for folder in [base] + folders:
        step = 0 if folder == base else json.loads((folder / "trainer_state.json").read_text())["global_step"]
        if lora and folder != base:
            import peft
            m = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), folder).eval()
        else:
            m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        scores = {}
        for i, probe in enumerate(PROBES):
            for cat in ("chosen", "rejected", "non_response"):
                total, n = response_logprob(m, tokenizer, probe["prompt"], probe[cat])
                scores[f"{i}:{cat}"] = {"logprob": total, "n_tokens": n}
        entry = {"folder": str(folder.relative_to(OUT / name)), "scores": scores}
        if folder != base:
            entry["log_history"] = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        ref[str(step)] = entry
    return ref


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    with open(OUT / "probes.jsonl", "w") as f:
        for p in PROBES:
            f.write(json.dumps(p) + "\n")
    torch.manual_seed(0)
    reference = {"transformers_version": transformers.__version__, "torch_version": torch.__version__,
                 "llama": train("llama", HF / "llama-tiny", 4, give_tokenizer=False),
                 "neox": train("neox", HF / "gpt-neox-tiny", 5, give_tokenizer=True),
                 "lora": train("lora", HF / "llama-tiny", 4, give_tokenizer=False, lora=True)}
    with open(OUT / "reference.json", "w") as f:
        json.dump(reference, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", OUT, {k: sorted(v, key=int) for k, v in reference.items() if isinstance(v, dict)})


if __name__ == "__main__":
    main()
