#!/usr/bin/env python3
"""Section-level questions made from the structure of the guideline corpus (weak supervision).

    .venv/bin/python tools/make_section_set.py [--corpus ../shared/data/nci-pdq] [--out DIR]

No hand labels and no engine output: every question comes from a section heading of
the corpus, and its answer is that section.
1. Sections: headings (levels 2-5) over at least --min-chars of their own text.
   Boilerplate headings are measured, not listed: a heading text found on more than
   5% of the pages or more than 100 times (References, Key Points, About This PDQ Summary, ...) is skipped,
   and so is every section below one.
2. The question: the heading itself when it is a sentence or a question (patient
   pages' key points: "Being exposed to asbestos can increase the risk of ..."),
   otherwise the heading with the page's topic when it does not name it (words found
   in more than 5% of the topics, such as "treatment", do not count as naming it) ("Prognostic
   scoring systems" -> "malignant mesothelioma: prognostic scoring systems"). A seeded
   third of the questions is wrapped in conversational phrasing, so that a model
   trained on them sees wording that carries no content.
3. Masking: in a copy of the corpus written to DIR/corpus, each chosen section's
   heading is replaced by "Details" and a letter code of its own ("Detailsqb"), so the
   answer cannot match its own heading and must be found by its text and the headings
   above it, and no two masked headings share a text (one shared placeholder would be
   the most common heading of the corpus, which a feature counts). At most one section
   is masked under one parent, at most --per-page a page, so "PARENT > Details" names
   it exactly. Its label is (page, "PARENT > Details"); the same heading on the
   other version of the same summary (health professional vs patient), which is not
   masked, is a label too.
4. Split by summary (both versions of a summary on one side), seeded: --dev-share of
   the summaries make the development questions (DIR/dev.jsonl), the rest the
   training questions (DIR/train.jsonl). Sections that the hand-written development
   questions (shared/data/pdq-questions) point to are left out, so training on
   these never sees their answers.

DIR/masks.jsonl says what each masked heading was ({"doc", "parent", "placeholder", "heading"}), so that
training can give the masked passages the heading statistics of the real corpus.

Question files use the layout of pdq-questions: {"_id", "text", "voice": "sections",
"relevant": [[doc_id, heading_substring], ...]}; they are scored on an index of
DIR/corpus (tools/eval_sections.py).
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MASK = "Details"
WRAPPERS = ("what should I know about {}", "can you tell me about {}", "I have a question about {}",
            "could you explain {}", "what does it mean: {}", "my doctor mentioned {}, what is that")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
WORD = re.compile(r"[a-z0-9]+")
STOP = frozenset("a an and are as at be by for from in is it of on or the to with".split())


def letters(n: int) -> str:
    """A letter code of its own for mask n: "qa", "qb", ... (a word no page has)."""
    out = ""
    while True:
        out = chr(ord("a") + n % 26) + out
        n //= 26
        if n == 0:
            return "q" + out


def title_topic(title: str) -> str:
    t = re.sub(r"\s*-\s*NCI\s*$", "", title)
    t = re.sub(r"\s*\(PDQ®?\)\s*", " ", t)
    t = re.sub(r"\s*[–—-]\s*(Patient|Health Professional) Version\s*$", "", t)
    return re.sub(r"\s+", " ", t).strip()


def content_words(s: str) -> set[str]:
    return {w for w in WORD.findall(s.lower()) if w not in STOP}


def read_page(path: Path):
    """(front-matter lines, body lines, title) of a Markdown page."""
    lines = path.read_text(encoding="utf-8").split("\n")
    front, body = [], lines
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            front, body = lines[: end + 1], lines[end + 1:]
    title = ""
    for line in front:
        if line.startswith("title:"):
            title = line[len("title:"):].strip().strip("'\"")
    return front, body, title


def sections(body: list[str]):
    """Each heading of the body: (line number, level, text, path of ancestor texts, own text chars)."""
    out, stack = [], []  # stack of (level, text)
    for i, line in enumerate(body):
        m = HEADING.match(line)
        if not m:
            if out and line.strip():
                out[-1][4] += len(line.strip())
            continue
        level, text = len(m.group(1)), m.group(2).replace("**", "").replace("__", "").strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        out.append([i, level, text, [t for _, t in stack], 0])
        stack.append((level, text))
    return out


def question_of(heading: str, topic: str, common: set[str], rng: random.Random) -> str:
    h = heading.strip()
    if h.endswith("?"):
        q = h
    elif h.endswith(".") or len(h.split()) >= 7:
        q = h.rstrip(".")
    else:
        q = h if (content_words(topic) - common) & content_words(h) else f"{topic}: {h}"
        if rng.random() < 1 / 3:
            lower = q[0].lower() + q[1:] if q[1:2].islower() else q
            q = rng.choice(WRAPPERS).format(lower)
    return q


def summary_key(rel: str, topic: str) -> str:
    """Both versions of a summary share their topic (the title without its version)."""
    return topic.lower()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "nci-pdq")
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "data" / "pdq-questions" / "questions.jsonl",
                    help="hand-written development questions whose answers are kept out")
    cache = Path(os.environ.get("MEDSEARCH_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medsearch"))
    ap.add_argument("--out", type=Path, default=cache / "pdq-sections")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--per-page", type=int, default=3)
    ap.add_argument("--min-chars", type=int, default=300)
    ap.add_argument("--dev-share", type=float, default=0.25)
    args = ap.parse_args()

    pages = sorted(p for p in args.corpus.rglob("*.md"))
    if not pages:
        sys.exit(f"no Markdown pages under {args.corpus}")
    parsed = {}
    heading_pages, heading_count = collections.Counter(), collections.Counter()
    for p in pages:
        rel = p.relative_to(args.corpus).as_posix()
        front, body, title = read_page(p)
        secs = sections(body)
        parsed[rel] = (front, body, title_topic(title), secs)
        heading_pages.update({s[2].lower() for s in secs})
        heading_count.update(s[2].lower() for s in secs)
    topic_words = collections.Counter(w for v in parsed.values() for w in content_words(v[2]))
    common = {w for w, n in topic_words.items() if n > 0.05 * len(pages)}  # "treatment", "cancer", ...
    boilerplate = {h for h in heading_pages if heading_pages[h] > 0.05 * len(pages) or heading_count[h] > 100}

    avoid = collections.defaultdict(list)  # doc -> heading substrings of hand-written questions' answers
    if args.questions.exists():
        for line in args.questions.read_text(encoding="utf-8").splitlines():
            if line.strip():
                for doc, sub in json.loads(line)["relevant"]:
                    avoid[doc].append(sub.lower())

    # Which headings each summary's pages have (for the other version's labels).
    by_summary = collections.defaultdict(list)
    for rel, (_, _, topic, secs) in parsed.items():
        by_summary[summary_key(rel, topic)].append(rel)

    rng = random.Random(args.seed)
    masked_lines = {}
    masks = []  # what each masked heading was (features that count headings need it)
    questions = []
    for rel in sorted(parsed):
        front, body, topic, secs = parsed[rel]
        if not topic:
            continue
        candidates = []
        for line, level, text, ancestors, chars in secs:
            if level < 2 or level > 5 or chars < args.min_chars or not ancestors:
                continue
            if text.lower() in boilerplate or any(a.lower() in boilerplate for a in ancestors[1:]):
                continue
            path = " > ".join(ancestors + [text]).lower()
            if any(sub in path for sub in avoid.get(rel, ())):
                continue
            if len(content_words(text)) == 0:
                continue
            candidates.append((line, level, text, ancestors))
        rng.shuffle(candidates)
        used_parents = set()
        for line, level, text, ancestors in candidates:
            parent = " > ".join(ancestors)
            if parent in used_parents:
                continue
            # Masked headings also must not collide with a real "Details" section.
            used_parents.add(parent)
            placeholder = MASK + letters(len(masks))
            masked_lines.setdefault(rel, {})[line] = "#" * level + " " + placeholder
            masks.append({"doc": rel, "parent": ancestors[-1], "placeholder": placeholder, "heading": text})
            relevant = [[rel, f"{ancestors[-1]} > {MASK}"]]
            for other in by_summary[summary_key(rel, topic)]:
                if other == rel:
                    continue
                if any(s[2].lower() == text.lower() for s in parsed[other][3]):
                    relevant.append([other, text])
            questions.append({"text": question_of(text, topic, common, rng), "voice": "sections", "relevant": relevant,
                              "summary": summary_key(rel, topic), "heading": text})
            if len(used_parents) == args.per_page:
                break

    # Split by summary, seeded by the summary's name (stable when pages are added).
    def is_dev(summary):
        h = int(hashlib.sha256(f"{args.seed}:{summary}".encode()).hexdigest()[:8], 16)
        return h / 0xFFFFFFFF < args.dev_share

    out = args.out
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "corpus").mkdir(parents=True)
    for rel, (front, body, _, _) in parsed.items():
        lines = list(body)
        for i, text in masked_lines.get(rel, {}).items():
            lines[i] = text
        dst = tmp / "corpus" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("\n".join(front + lines), encoding="utf-8")
    counts = collections.Counter()
    files = {"train": open(tmp / "train.jsonl", "w", encoding="utf-8"), "dev": open(tmp / "dev.jsonl", "w", encoding="utf-8")}
    for i, q in enumerate(questions):
        split = "dev" if is_dev(q["summary"]) else "train"
        counts[split] += 1
        row = {"_id": f"s{i:05d}", "text": q["text"], "voice": q["voice"], "relevant": q["relevant"]}
        files[split].write(json.dumps(row, ensure_ascii=False) + "\n")
    for f in files.values():
        f.close()
    with open(tmp / "masks.jsonl", "w", encoding="utf-8") as f:
        for m in masks:
            f.write(json.dumps(m, ensure_ascii=False) + "\n")
    (tmp / "README.txt").write_text(f"made by tools/make_section_set.py --seed {args.seed} --per-page {args.per_page} "
                                    f"--min-chars {args.min_chars} --dev-share {args.dev_share} from {args.corpus}\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    print(f"{len(questions)} questions ({counts['train']} train, {counts['dev']} dev) from {len(parsed)} pages, "
          f"{len(boilerplate)} boilerplate headings skipped; masked corpus in {out / 'corpus'}", file=sys.stderr)


if __name__ == "__main__":
    main()
