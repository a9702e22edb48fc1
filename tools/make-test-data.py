#!/usr/bin/python3
"""Copies a lean subset of the shared llama.cpp reference outputs into tests/data/ref.

For each <preset>-<type> folder of ../shared/fixtures/ref: prompts.json (token ids), the
greedy continuations (generate_exact.jsonl) and a subset of the logits rows of every prompt
(logits_exact_p<i>.npy, float32, re-written with only the kept rows; rows.json lists, per prompt,
the positions kept). Kept rows: prompt 0 all, prompt 1 every 4th and the last, prompts 2-4 the
positions 0, 16, 32, ... and the last (all of them stored by every reference folder).
Usage: tools/make-test-data.py SHARED_FIXTURES_DIR   (needs numpy)
"""
import json
import os
import shutil
import sys

import numpy as np


def kept_positions(prompt_index, n_tokens):
    if prompt_index == 0:
        return list(range(n_tokens))
    step = 4 if prompt_index == 1 else 16
    pos = list(range(0, n_tokens, step))
    if pos[-1] != n_tokens - 1:
        pos.append(n_tokens - 1)
    return pos


def main():
    src = os.path.join(sys.argv[1], "ref")
    dst = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "ref")
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        folder = os.path.join(src, name)
        if not os.path.isdir(folder):
            continue
        out = os.path.join(dst, name)
        os.makedirs(out, exist_ok=True)
        prompts = json.load(open(os.path.join(folder, "prompts.json")))
        rows = []
        for i, p in enumerate(prompts):
            stored = p["positions"]
            keep = [q for q in kept_positions(i, p["n_tokens"]) if q in stored]
            logits = np.load(os.path.join(folder, f"logits_exact_p{i}.npy"))
            idx = [stored.index(q) for q in keep]
            np.save(os.path.join(out, f"logits_exact_p{i}.npy"), np.ascontiguousarray(logits[idx], dtype="<f4"))
            rows.append(keep)
        json.dump(rows, open(os.path.join(out, "rows.json"), "w"))
        shutil.copy(os.path.join(folder, "prompts.json"), out)
        shutil.copy(os.path.join(folder, "generate_exact.jsonl"), out)
    shutil.copy(os.path.join(src, "noise_floor.json"), dst)


if __name__ == "__main__":
    main()
