#!/usr/bin/env python3
"""Writes Tests/ProbesTests/Fixtures/conformance/*.jsonl: our own texts in the shapes of the field's files
(issue 32). Run from the repository root; the output is committed, this script is developer tooling only.

Shapes (studied, none of their data copied): the learning-dynamics repository's helpful-base and UltraFeedback
probe files (formal_prob_*, prob_*_gen, prob_*_selfr), the DPO reference code's HH transcripts, TRL's standard,
conversational, prompt-completion, language-modelling and unpaired forms, UltraFeedback-binarized's message lists.
"""
import json, os, sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/ProbesTests/Fixtures/conformance"
os.makedirs(OUT, exist_ok=True)


def w(name, rows):
    with open(os.path.join(OUT, name), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


hh1 = "\n\nHuman: How do I stop my bread from going stale so fast?\n\nAssistant:"
hh2 = "\n\nHuman: My tomato plants have yellow leaves.\n\nAssistant: Are the lower leaves yellow, or the new ones?\n\nHuman: Mostly the lower ones.\n\nAssistant:"
# learning-dynamics helpful-base formal_prob_* shape: explicit-prompt HH, 13 response fields; the rewrites,
# the non-response and the shuffles written without the leading space
w("ld-hh-formal-prob.jsonl", [
 {"prompt": hh1,
  "chosen": " Keep it in a cloth bag at room temperature, and freeze what you will not eat in two days.",
  "chosen_initial": " Bread goes stale because it dries out.",
  "chosen_selfr": "@@@ Original Sentence: Keep it in a cloth bag and freeze the rest.",
  "chosen_gptsemantic": "Store it in a fabric bag at room temperature and put what you cannot finish in two days in the freezer.",
  "chosen_gptformat": "Keep it in a paper sack in the cupboard, and chill what you will not use in three days.",
  "rejected": " Just eat it faster.",
  "reject_gptsemantic": "Simply finish it sooner.",
  "reject_gptformat": "Just bake it longer.",
  "irr_train": " Lower leaves often yellow when the soil stays wet.",
  "irr_test": " A kettle descales well with vinegar.",
  "irr_hum": "The lighthouse keeper counted the ships as the fog rolled in from the bay.",
  "random_permute": "bag it days. in eat Keep a two will cloth not and what freeze you",
  "random_nonhum": "soil kettle fog yellow the in bay counted"},
 {"prompt": hh2,
  "chosen": " Lower leaves turning yellow usually means too much water or too little nitrogen; let the soil dry between waterings.",
  "chosen_initial": "",
  "chosen_selfr": "@@@ Original Sentence: Let the soil dry between waterings.",
  "chosen_gptsemantic": "When the older leaves go yellow, the plant is usually overwatered or short of nitrogen.",
  "chosen_gptformat": "Upper leaves turning brown usually means too much sun or too little potassium.",
  "rejected": " Paint them green.",
  "reject_gptsemantic": "Colour them green.",
  "reject_gptformat": "Water them daily.",
  "irr_train": " Keep it in a cloth bag at room temperature.",
  "irr_test": " Cats sleep most of the day.",
  "irr_hum": "A train whistled somewhere beyond the hills.",
  "random_permute": " nitrogen; soil let the too yellow",
  "random_nonhum": "hills whistled cloth kettle"},
])
# prob_*_gen: the prompt and the chosen response only
w("ld-hh-prob-gen.jsonl", [{"prompt": hh1, "chosen": " Keep it in a cloth bag at room temperature."}])
# prob_*_selfr: a rephrasing request as a plain prompt, its response one space
w("ld-hh-prob-selfr.jsonl", [{"prompt": "Please rephrase the following sentence: \n@@@ Original Sentence: Keep it in a cloth bag.\n@@@ Rephrase: ", "chosen": " "}])
uf = "Human: how do I keep cut flowers fresh longer\nAssistant:"
# learning-dynamics UltraFeedback files: "Human: ...\nAssistant:" plain prompts, responses without a leading space
w("ld-uf-formal-prob.jsonl", [
 {"prompt": uf, "chosen": "Trim the stems at an angle and change the water every two days.",
  "chosen_initial": "Flowers like water.", "chosen_selfr": "Cut the stems slanted and refresh the water often.",
  "chosen_gptsemantic": "Cut the stems diagonally and replace the water every other day.",
  "chosen_gptformat": "Trim the leaves at the top and change the vase every two weeks.",
  "rejected": "Put them in the sun.", "reject_gptsemantic": "Place them in sunlight.", "reject_gptformat": "Put them in the fridge.",
  "irr_train": "Descale the kettle with vinegar.", "irr_test": "Tomatoes need full sun.",
  "irr_hum": "The old bridge creaked under the weight of the morning carts.",
  "random_permute": "water the Trim days. two at stems angle", "random_nonhum": "bridge vinegar sun carts"}])
w("ld-uf-prob-gen.jsonl", [{"prompt": uf, "chosen": "Trim the stems at an angle."}])
w("ld-uf-prob-selfr.jsonl", [{"prompt": "Please rephrase the following sentence: \nTrim the stems at an angle.\nRephrase: ", "chosen": " ", "rejected": " "}])
# the DPO reference code's HH: whole transcripts, the prompt shared
w("dpo-hh.jsonl", [{"chosen": hh1 + " Keep it in a cloth bag.", "rejected": hh1 + " Eat it faster."}])
# TRL's forms
w("trl-standard-preference.jsonl", [{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}])
w("trl-conversational-preference.jsonl", [{"prompt": [{"role": "user", "content": "What colour is the sky?"}],
  "chosen": [{"role": "assistant", "content": "It is blue."}], "rejected": [{"role": "assistant", "content": "It is green."}]}])
w("trl-prompt-completion.jsonl", [{"prompt": "The sky is", "completion": " blue."}])
w("trl-conversational-prompt-completion.jsonl", [{"prompt": [{"role": "user", "content": "What colour is the sky?"}],
  "completion": [{"role": "assistant", "content": "It is blue."}]}])
w("trl-language-modeling.jsonl", [{"text": "The sky is blue."}])
w("trl-conversational-language-modeling.jsonl", [{"messages": [{"role": "user", "content": "What colour is the sky?"}, {"role": "assistant", "content": "It is blue."}]}])
w("trl-unpaired.jsonl", [{"prompt": "The sky is", "completion": " blue.", "label": True}, {"prompt": "The sky is", "completion": " green.", "label": False}])
# UltraFeedback-binarized: the prompt as text, chosen/rejected/messages as whole conversations, an id and two scores
w("ultrafeedback-binarized.jsonl", [{"prompt": "Name a fruit that is yellow.", "prompt_id": "3f1c0a",
  "chosen": [{"role": "user", "content": "Name a fruit that is yellow."}, {"role": "assistant", "content": "A banana."}],
  "rejected": [{"role": "user", "content": "Name a fruit that is yellow."}, {"role": "assistant", "content": "A cucumber."}],
  "messages": [{"role": "user", "content": "Name a fruit that is yellow."}, {"role": "assistant", "content": "A banana."}],
  "score_chosen": 9.0, "score_rejected": 2.5}])
