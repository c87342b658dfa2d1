#!/usr/bin/env python3
"""Writes data/golden/<model folder>.jsonl (e.g. all-minilm-l6-v2.jsonl): reference embeddings for the C++
BertEncoder (tests/embed/bert_encoder_test.cc), made by the reference runtime.

Each line is {"text", "ids", "embedding"}:
  text       the input string;
  ids        what sentence-transformers fed the model ([CLS] ... [SEP],
             truncated at max_seq_length = 256 tokens including the specials);
  embedding  SentenceTransformer.encode(text): mean pooling, L2-normalised,
             384 floats rounded to 8 decimals.

The ids are also checked against Hugging Face `tokenizers` on tokenizer.json
(with its baked-in padding to 128 switched off and truncation set to 256).

Texts (about 300, fixed seed): short queries from PubMedQA, MedQuAD and
SciFact; passages from the NCI PDQ Markdown tree and the BEIR corpora
(many longer than 256 tokens, so truncation is covered); hand-written
Unicode, emoji, CJK, accents, control and zero-width characters; the empty
string and whitespace-only strings.

One file per model this build knows (data/golden/<model folder>.jsonl): run it
once per model folder with the matching --out.

Run (needs sentence-transformers: a venv from requirements-reference.txt, and
the model from tools/fetch_model.sh; no network):
  HF_HUB_OFFLINE=1 /tmp/ref-venv/bin/python tools/make_encoder_golden.py \
      [--model-dir ~/.cache/medsearch/models/all-minilm-l6-v2] \
      [--shared-data ../shared/data] [--out data/golden/all-minilm-l6-v2.jsonl]
"""
import argparse
import json
import os
import pathlib
import random
import re
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEED = 20240607


def default_model_dir():
    if os.environ.get("MEDSEARCH_MODEL_DIR"):
        return pathlib.Path(os.environ["MEDSEARCH_MODEL_DIR"])
    cache = os.environ.get("MEDSEARCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "medsearch")
    return pathlib.Path(cache) / "models" / "all-minilm-l6-v2"


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def sample(rng, items, n):
    return rng.sample(items, min(n, len(items)))


def clip(text, limit=1500):
    """Cuts at a word boundary: still past 256 tokens, but keeps the file small."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0]


def pdq_paragraphs(root):
    """Body paragraphs of the NCI PDQ Markdown files (front matter dropped)."""
    out = []
    for path in sorted(root.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if text.startswith("---"):
            end = text.find("\n---", 3)
            text = text[end + 4:] if end >= 0 else text
        for para in re.split(r"\n\s*\n", text):
            para = para.strip()
            if len(para) >= 60 and not para.startswith("!["):
                out.append(para)
    return out


HANDWRITTEN = [
    "",
    " ",
    "   \t\n  ",
    "\u3000\u00a0",
    "a",
    "?",
    "...!!!",
    "HER2-positive breast cancer",
    "What is the 5-year survival rate for stage III NSCLC?",
    "BRCA1/BRCA2 mutations & risk-reducing salpingo-oophorectomy",
    "Héllo WÖRLD naïve café résumé Ångström",
    "Müller-Lyer, São Paulo, Kraków, Øresund, Straße",
    "東京の病院で肺がんの治療を受けました。",
    "乳腺癌的治疗方法有哪些？",
    "유방암 치료 방법",
    "Лечение рака лёгкого",
    "علاج سرطان الثدي",
    "कैंसर का इलाज",
    "chemo day 3 😷💊 feeling tired 😴",
    "👩‍⚕️👨‍👩‍👧 🏳️‍🌈 🇺🇸",
    "x\u200by zero\u200dwidth \ufeffbom",
    "tab\there\r\nnewline\x0bvtab\x0cformfeed",
    "control\x01\x02\x1fchars\x7f",
    "combining e\u0301 a\u0308 n\u0303 (NFD)",
    "ﬁnancial ﬂow ｆｕｌｌｗｉｄｔｈ ①②③ ™ ©",
    "α-fetoprotein, β-hCG, γ-interferon, Δ9-THC, µg/mL",
    "pneumonoultramicroscopicsilicovolcanoconiosis " * 3,
    "a" * 120 + " word longer than one hundred characters",
    "https://www.cancer.gov/types/breast/hp/breast-treatment-pdq#section_1.2",
    "IC50 = 3.2 nM; p < 0.001; HR 0.68 (95% CI, 0.55-0.84)",
    "[CLS] [SEP] [MASK] [PAD] [UNK] literal special tokens",
    "\ufffdreplacement\ufffd char",
    "e.g., i.e., et al., vs. Dr. O'Neil's co-author",
    "TP53 p.R175H c.524G>A KRAS G12C EGFR exon 19 del",
]


def long_texts(rng, passages, n):
    """Concatenations well past 256 tokens."""
    out = []
    for _ in range(n):
        parts = sample(rng, passages, 6)
        out.append(" ".join(parts))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=pathlib.Path, default=default_model_dir())
    ap.add_argument("--shared-data", type=pathlib.Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "data" / "golden" / "all-minilm-l6-v2.jsonl")
    args = ap.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    rng = random.Random(SEED)
    data = args.shared_data

    def texts_of(rows, n):
        return [r["text"] for r in sample(rng, rows, n)]

    def titled(rows, n):
        return [(r.get("title", "") + " " + r["text"]).strip() for r in sample(rng, rows, n)]

    pdq = pdq_paragraphs(data / "nci-pdq")
    pubmed_corpus = read_jsonl(data / "pubmedqa" / "corpus.jsonl")
    scifact_corpus = read_jsonl(data / "scifact" / "corpus.jsonl")
    medquad_corpus = read_jsonl(data / "medquad" / "corpus.jsonl")

    texts = []
    texts += HANDWRITTEN
    texts += texts_of(read_jsonl(data / "pubmedqa" / "queries.jsonl"), 30)
    texts += texts_of(read_jsonl(data / "medquad" / "queries.jsonl"), 30)
    texts += texts_of(read_jsonl(data / "scifact" / "queries.train.jsonl"), 30)
    texts += [clip(t) for t in sample(rng, pdq, 55)]
    texts += [clip(t) for t in titled(scifact_corpus, 25)]
    texts += [clip(t) for t in texts_of(pubmed_corpus, 25)]
    texts += [clip(t) for t in titled(medquad_corpus, 25)]
    texts += [clip(t, 2500) for t in long_texts(rng, pdq, 8)]
    # Near the 256-token boundary: prefixes of a long text by words.
    words = " ".join(sample(rng, pdq, 10)).split()
    texts += [" ".join(words[:k]) for k in (150, 180, 200, 210, 220, 240, 260)]

    # float32 arithmetic whatever the weights' dtype (the fine-tuned model ships bfloat16 weights).
    model = SentenceTransformer(str(args.model_dir), device="cpu", model_kwargs={"dtype": torch.float32})
    max_len = model.max_seq_length
    assert max_len == 256, max_len

    tok = Tokenizer.from_file(str(args.model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)

    ids = []
    for t in texts:
        fed = model.tokenize([t])["input_ids"][0].tolist()  # what ST gives the model
        ref = tok.encode(t).ids
        if fed != ref:
            sys.exit(f"sentence-transformers and tokenizers disagree on {t!r}:\n{fed}\n{ref}")
        ids.append(fed)

    emb = model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    assert emb.shape == (len(texts), 384), emb.shape
    norms = np.linalg.norm(emb, axis=1)
    assert np.all(np.abs(norms - 1) < 1e-5), norms

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for t, i, e in zip(texts, ids, emb):
            vec = ",".join(repr(round(float(x), 8)) for x in e)
            line = '{"text":%s,"ids":%s,"embedding":[%s]}' % (
                json.dumps(t, ensure_ascii=False), json.dumps(i, separators=(",", ":")), vec)
            f.write(line + "\n")
    truncated = sum(len(i) == max_len for i in ids)
    print(f"wrote {len(texts)} texts ({truncated} truncated at {max_len} tokens) to {args.out} "
          f"({args.out.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
