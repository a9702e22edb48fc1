#!/usr/bin/env python3
"""Convert evaluation sets to `bloomz score` JSON Lines (Python 3 standard library only).

  to_score_jsonl.py copa      FILE.jsonl [--format F]   # SuperGLUE COPA (FewGLUE records)
  to_score_jsonl.py xcopa     FILE.jsonl [--format F]   # XCOPA (same record layout as COPA)
  to_score_jsonl.py xwinograd FILE.jsonl                # XWinograd (Tikhonov & Ryabinin rows)

Output on stdout, one item per input record:
  COPA/XCOPA: {"id", "prompt", "choices": [c1, c2], "label"}
  XWinograd:  {"id", "contexts": [ctx_with_candidate1, ctx_with_candidate2], "continuation", "label"}
See README.md for the prompt formats.
"""
import argparse
import json
import sys

# COPA/XCOPA prompt formats. The promptsource templates are the English prompts that the bloomz
# paper (Muennighoff et al. 2022, "Crosslingual Generalization through Multitask Finetuning")
# evaluates XCOPA with; the answer choice is scored as a continuation after one space.
COPA_FORMATS = ("best_option", "cause_effect", "plausible_alternatives", "harness")


def copa_item(rec, fmt, source):
    premise, c1, c2, q = rec["premise"], rec["choice1"], rec["choice2"], rec["question"]
    if fmt == "best_option":
        what = "a cause" if q == "cause" else "an effect"
        prompt = f"{premise} \n\nWhat's the best option?\n- {c1}\n- {c2}\n\nWe are looking for {what}\n"
        choices = [" " + c1, " " + c2]
    elif fmt == "cause_effect":
        what = "cause:" if q == "cause" else "effect:"
        prompt = f"{premise}\n\nSelect the most plausible {what}\n- {c1}\n- {c2}"
        choices = [" " + c1, " " + c2]
    elif fmt == "plausible_alternatives":
        lead = "This happened because..." if q == "cause" else "As a consequence..."
        prompt = f"{premise} {lead}\nHelp me pick the more plausible option:\n- {c1}\n- {c2}"
        choices = [" " + c1, " " + c2]
    else:  # harness: EleutherAI lm-evaluation-harness's zero-shot COPA (English connectives)
        connective = "because" if q == "cause" else "therefore"
        prompt = premise.strip()
        if prompt.endswith("."):
            prompt = prompt[:-1]
        prompt = f"{prompt} {connective}"

        def lower_first(s):
            return s[:1].lower() + s[1:]

        choices = [" " + lower_first(c1), " " + lower_first(c2)]
    item = {"id": f"{source}-{rec.get('idx')}", "prompt": prompt, "choices": choices}
    if "label" in rec and rec["label"] is not None and rec["label"] >= 0:
        item["label"] = int(rec["label"])
    return item


def word_offsets(text, tokens):
    """Character span of each word token, found left to right in the text."""
    spans, pos = [], 0
    for tok in tokens:
        at = text.find(tok, pos)
        if at < 0:
            return None
        spans.append((at, at + len(tok)))
        pos = at + len(tok)
    return spans


def xwinograd_item(rec, n, source):
    """Partial scoring (as lm-evaluation-harness scores Winogrande): the pronoun is replaced by
    each candidate; the text up to and including the candidate is the context, the rest of the
    sentence after the pronoun is the continuation scored after each context."""
    text, tokens = rec["text"].rstrip(), rec["tokens"]
    spans = word_offsets(text, tokens)
    if spans is None:
        return None
    p_start, p_end = rec["pronoun"][1]
    start, end = spans[p_start][0], spans[p_end - 1][1]
    cands = rec["candidates"]
    if len(cands) != 2:
        return None
    contexts = []
    for cand in cands:
        c_start, c_end = cand[1]
        cand_text = text[spans[c_start][0]:spans[c_end - 1][1]]
        # a candidate taken from the start of the sentence keeps its case as written there
        contexts.append(text[:start] + cand_text)
    continuation = text[end:]
    if not continuation.strip():
        return None
    labels = [i for i, cand in enumerate(cands) if cand[3]]
    item = {"id": f"{source}-{n}", "contexts": contexts, "continuation": continuation}
    if len(labels) == 1:
        item["label"] = labels[0]
    return item


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set", choices=["copa", "xcopa", "xwinograd"])
    ap.add_argument("file")
    ap.add_argument("--format", default="best_option", choices=COPA_FORMATS, help="COPA/XCOPA prompt format")
    ap.add_argument("--source", default=None, help="id prefix (default: the set name and file stem)")
    ap.add_argument("--limit", type=int, default=0, help="convert at most N records")
    args = ap.parse_args()
    stem = args.file.rsplit("/", 1)[-1].split(".")[0]
    source = args.source or (stem if stem == args.set else f"{args.set}-{stem}")
    n_out = n_skipped = 0
    with open(args.file, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if args.limit and n_out >= args.limit:
                break
            if not line.strip():
                continue
            rec = json.loads(line)
            if args.set == "xwinograd":
                item = xwinograd_item(rec, n, source)
            else:
                item = copa_item(rec, args.format, source)
            if item is None:
                n_skipped += 1
                continue
            sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
            n_out += 1
    print(f"{args.file}: {n_out} items written, {n_skipped} skipped", file=sys.stderr)


if __name__ == "__main__":
    main()
