"""medsearch.WordPieceTokenizer against Hugging Face `tokenizers`, id for id.

The reference is the model's own tokenizer.json (BertNormalizer, BertPreTokenizer,
WordPiece, [CLS] A [SEP]) with its baked-in truncation/padding to 128 switched
off; truncation at 512 and 256 is compared separately with HF's own truncation.
Texts: seeded samples of every shared corpus, all SciFact/PubMedQA queries, a
list of hard cases, and every Unicode scalar value (planes 4-13, which are
unassigned, sampled).
"""

import json
import os
import pathlib
import random
import sys

import pytest

MODEL_DIR = pathlib.Path(
    os.environ.get("MEDSEARCH_MODEL_DIR", pathlib.Path.home() / ".cache" / "medsearch" / "models" / "all-minilm-l6-v2")
)
SEED = 20240611
PER_CORPUS = 1000
UNTRUNCATED = sys.maxsize

HARD_CASES = [
    # empty, whitespace only, whitespace oddities
    "", " ", "   ", "\t", "\n", "\r\n", " \t\r\n ", "\u00a0", "\u2028", "\u2029", "\u3000", "\u202f\u205f",
    "a\u00a0b", "a\u2028b", "a\tb\r\nc", "a\u200bb", "a\u200cb", "a\u200db", "\ufeffBOM at start", "mid\ufeffdle",
    "a\u000bb\u000cc", "a\u0085b", "a\u1680b\u180ec", "\u2000\u2001\u2002\u200a",
    # control and format characters, replacement character, private use
    "a\x00b", "\x01\x02\x03", "tab\x7fdel", "a\ufffdb", "\ue000private\U000f0000", "bidi\u202ehidden\u202c",
    "\u00adsoft\u00adhyphen", "\u2060word\u2061joiner", "\U000e0001tag\U000e0041",
    # accents, case, scripts
    "Café naïve résumé coöperate", "CAFÉ", "cafe\u0301", "İstanbul", "ıi İI", "Straße STRASSE ẞ", "ǅungla ǈ",
    "Ωμέγα ΣΊΣΥΦΟΣ ς", "Пембролизумаб ЁЖИК", "Ǆ ǆ Å Å", "\u212a\u2126\u212b", "ﬁnancial ﬂow", "Ⅻ ⅻ ①",
    "e\u0301\u0327\u0316", "a\u0345\u0301", "\u1e9b\u0323",
    # emoji, ZWJ sequences, flags, keycaps, skin tones
    "😀", "I ❤️ oncology 👩‍⚕️", "👨‍👩‍👧‍👦 family", "🇺🇸🇫🇷", "1️⃣ keycap", "👍🏽 ok", "🥰🫠🪸", "☢️ ⚕",
    # CJK, Japanese kana, Korean
    "癌症治疗", "肺癌の治療", "がん治療 カタカナ ｶﾀｶﾅ", "한국어 암 치료", "中a文b", "\uf900\uf9ff\ufa70",
    "\U00020000\U0002a6df\U0002a700\U0002b739\U0002b740\U0002b820\U0002b920\U0002ceaf\U0002f800",
    "ㄱㄴㄷ ᄀᄁ", "〜「」『』・", "（全角）、。",
    # numbers, units, clinical notation
    "≥50%", "≤ 5 mg", "5-FU", "1,000.5mg/m²", "10⁹/L", "37 °C", "±2 SD", "×10", "µg/kg", "μg/kg", "½ dose",
    "PD-L1 TPS ≥50%", "HER2+/HR−", "Ki-67 ≤ 20%", "p < 0.001", "IC₅₀ = 3 nM", "T2N1M0", "ECOG 0–1", "3′-UTR",
    # chemical names
    "N-(4-hydroxyphenyl)retinamide", "2′-deoxy-2′-fluoro", "2'-deoxycytidine", "(S)-2-amino-3-(1H-indol-3-yl)",
    "cis-diamminedichloroplatinum(II)", "5,10-methylenetetrahydrofolate", "α-tocopherol β-carotene γ-H2AX",
    "[¹⁸F]FDG PET/CT", "Lu-177–PSMA-617", "6-mercaptopurine",
    # punctuation of every kind
    "Hello, world!", "“quoted” ‘single’ «guillemets» „low“", "em—dash en–dash ‐ ‑ ‒ ―", "¿Qué? ¡Sí!",
    "a…b", "§ 12 ¶ 3", "#hashtag @user $100 ~approx ^sup `code` {brace} |pipe| \\back", "a_b", "x*y=z",
    "\u2e41\u2e42\u2e43\u2e4f\u2e52", "\u061d\u166d\u111c9",
    # special tokens in raw text
    "[CLS] x [SEP]", "[MASK]ed [UNK] [PAD]", "[sep] [Cls]", "[[SEP]]", "a[SEP]b", "[SE\x00P]",
    # very long words and pieces
    "a" * 100, "a" * 101, "pneumonoultramicroscopicsilicovolcanoconiosis" * 3, "é" * 100 + "é",
    "x" * 5000, "supercalifragilistic " * 300, "https://www.cancer.gov/types/lung/hp/non-small-cell-lung-treatment-pdq",
    # Unicode 16 case pairs and other version edges
    "\ua7cb\ua7cc\ua7da\ua7dc \u1c89", "\U00010d50\U00010d65", "\U00011938", "\u1734", "\U000110cd\U00013430",
    # mixed
    "Non–small cell lung cancer (NSCLC) — stage IIIA/B; EGFR ex19del/L858R (≈15%).",
]


def _texts_from_jsonl(path: pathlib.Path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def corpus_texts(shared: pathlib.Path):
    """{corpus name: texts}: seeded samples of documents and paragraphs, plus queries."""
    rng = random.Random(SEED)
    out = {}

    md_files = sorted((shared / "nci-pdq").rglob("*.md"))
    paragraphs = []
    docs = []
    for path in md_files:
        text = path.read_text(encoding="utf-8")
        docs.append(text)
        paragraphs.extend(p for p in text.split("\n\n") if p.strip())
    # Mostly paragraphs; some whole documents (tens of kB each) for long inputs.
    out["nci-pdq"] = rng.sample(paragraphs, min(PER_CORPUS - 25, len(paragraphs))) + rng.sample(docs, min(25, len(docs)))

    for name in ("scifact", "pubmedqa", "medquad"):
        records = _texts_from_jsonl(shared / name / "corpus.jsonl")
        sample = rng.sample(records, min(PER_CORPUS, len(records)))
        texts = [(r.get("title", "") + "\n" + r.get("text", "")).strip() for r in sample]
        query_file = next((shared / name).glob("queries*.jsonl"))
        queries = [q["text"] for q in _texts_from_jsonl(query_file)]
        if name != "medquad":  # all the queries of scifact and pubmedqa; medquad has 15k
            texts += queries
        else:
            texts += rng.sample(queries, min(PER_CORPUS, len(queries)))
        out[name] = texts
    return out


@pytest.fixture(scope="module")
def tokenizers_pair():
    tokenizers = pytest.importorskip("tokenizers")
    if not (MODEL_DIR / "vocab.txt").is_file() or not (MODEL_DIR / "tokenizer.json").is_file():
        pytest.skip(f"model not found at {MODEL_DIR} (run tools/fetch_model.sh)")
    import medsearch

    ours = medsearch.WordPieceTokenizer(MODEL_DIR / "vocab.txt")
    hf = {}
    for max_tokens in (None, 512, 256, 16):
        tok = tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
        tok.no_padding()
        if max_tokens is None:
            tok.no_truncation()
        else:
            tok.enable_truncation(max_length=max_tokens)
        hf[max_tokens] = tok
    return ours, hf, tokenizers


def _first_difference(label, texts, got, want, max_tokens):
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    if not bad:
        return
    t, g, w = bad[0]
    at = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
    pytest.fail(
        f"{label} (max_tokens={max_tokens}): {len(bad)}/{len(texts)} texts differ; first: {t[:200]!r}\n"
        f"  at position {at}: ours {g[max(0, at - 3):at + 5]} hf {w[max(0, at - 3):at + 5]}"
    )


def _compare(ours, hf, texts, label, limits=(None, 512, 256)):
    """Ours against HF, untruncated and at each limit. HF truncation is asked
    of HF only for the texts it would cut; the others keep their full ids."""
    full = [e.ids for e in hf[None].encode_batch_fast(texts)]
    _first_difference(label, texts, ours.encode_batch(texts, max_tokens=UNTRUNCATED), full, None)
    for max_tokens in limits:
        if max_tokens is None:
            continue
        want = list(full)
        long_ones = [i for i, ids in enumerate(full) if len(ids) > max_tokens]
        cut = hf[max_tokens].encode_batch_fast([texts[i] for i in long_ones])
        for i, e in zip(long_ones, cut):
            want[i] = e.ids
        _first_difference(label, texts, ours.encode_batch(texts, max_tokens=max_tokens), want, max_tokens)
    return len(texts)


def test_corpora_match_hugging_face(tokenizers_pair, shared, capsys):
    ours, hf, _ = tokenizers_pair
    counts = {}
    for name, texts in corpus_texts(shared).items():
        assert len(texts) >= PER_CORPUS, name
        counts[name] = _compare(ours, hf, texts, name)
    with capsys.disabled():
        total = sum(counts.values())
        print(f"\ntokenizer parity: {total} corpus texts x 3 (untruncated, 512, 256) all equal: {counts}")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # BertWordPieceTokenizer's own
def test_hard_cases_match_hugging_face(tokenizers_pair, capsys):
    ours, hf, tokenizers = tokenizers_pair
    _compare(ours, hf, HARD_CASES, "hard cases")
    # The pieces as strings, and the vocab.txt route (BertWordPieceTokenizer) agrees too.
    bert = tokenizers.BertWordPieceTokenizer(str(MODEL_DIR / "vocab.txt"), lowercase=True)
    for text in HARD_CASES:
        want = hf[None].encode(text)
        assert ours.tokenize(text) == want.tokens[1:-1], text
        assert ours.encode(text, max_tokens=UNTRUNCATED) == bert.encode(text).ids, text
    with capsys.disabled():
        print(f"\ntokenizer parity: {len(HARD_CASES)} hard cases x 3 all equal")


def test_code_points_match_hugging_face(tokenizers_pair, capsys):
    """Each scalar value inside a word and alone: "a{c}a {c}". Catches any
    disagreement on what is dropped, whitespace, punctuation, CJK, an accent,
    or lower-cased/decomposed into something the vocabulary knows."""
    ours, hf, _ = tokenizers_pair
    # Planes 4-13 are unassigned in every Unicode version so far: a sample will do.
    code_points = [c for c in range(0x40000) if not 0xD800 <= c < 0xE000]
    code_points += list(range(0x40000, 0xE0000, 97)) + list(range(0xE0000, 0x110000))
    chars = [chr(c) for c in code_points]
    texts = [" ".join(f"a{c}a {c}" for c in chars[i:i + 1000]) for i in range(0, len(chars), 1000)]
    _compare(ours, hf, texts, "code points", limits=())
    with capsys.disabled():
        print(f"\ntokenizer parity: {len(chars)} code points (all outside planes 4-13, 1 in 97 inside) equal")


# Fragments whose interplay is hard: combining marks kept and dropped (U+1D165
# is Mc with a combining class; U+1734 is Mn only in HF's tables), special
# tokens and broken ones, NFD-sensitive letters, version-skew characters.
FRAGMENTS = [
    "a", "B", "é", "e\u0301", "\u0301", "\u0316", "\U0001d165", "\U0001d16d", "\u1734", "\u0f71", "\u093c",
    "\u094d", " ", "\u00a0", "[SEP]", "[", "]", "[MASK", "İ", "ß", "中", "が", "\u3099", "한", "ᄀ", "\u200d",
    "\ufeff", "\x00", "\x0b", "-", "##", "un", "##able", "x" * 50, "\u1c89", "\ua7cb", "\U00011938", "\u2e43",
    "\u166d", "😀", "\U0001f3fd", "1", "%", "²", "ﬁ", "Å", "\u212b", "\u0345", "\u0130\u0301",
]


def test_random_mixtures_match_hugging_face(tokenizers_pair):
    ours, hf, _ = tokenizers_pair
    rng = random.Random(SEED)
    texts = ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    _compare(ours, hf, texts, "random mixtures", limits=(None, 16))


def test_truncation_limits(tokenizers_pair):
    ours, _, _ = tokenizers_pair
    long_text = "pembrolizumab " * 200
    full = ours.encode(long_text, max_tokens=UNTRUNCATED)
    for max_tokens in (2, 3, 256, 512):
        ids = ours.encode(long_text, max_tokens=max_tokens)
        assert len(ids) == max_tokens
        assert ids[:-1] == full[: max_tokens - 1] and ids[-1] == full[-1]
    with pytest.raises(ValueError):
        ours.encode("x", max_tokens=1)
    assert ours.encode("") == [101, 102]
    assert ours.vocab_size == 30522
