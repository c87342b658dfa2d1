#!/usr/bin/env python3
"""One build, every CPU: a small index with embeddings, built and searched in
every mode with the CLI and through the Python module, natively at each
kernel level this machine has (MEDSEARCH_CPU_LEVEL) and under qemu-x86_64
emulating an AVX2 CPU (-cpu Haswell: x86-64-v3) and an x86-64-v2 one
(-cpu Nehalem); each run is compared with the native float32 run: the same
passages in the same order and scores and cosines within the tolerance of
the precision (float32 everywhere but AMX's bfloat16, whose rerank mode is
compared by cosines only: the reranker's trees turn a 1e-2 change of a
feature into another score). Each run also checks that the CLI's --version
and build_info() report the level they should.

Emulation runs the encoder's floating point in software, about 15 MFLOP/s
for AVX2, so the index is built with a tiny random BERT of the real model's
vocabulary (2 layers, 96 wide, 3 heads of 32: the shapes take the same
kernel paths as MiniLM's) and the real model only embeds a few short queries
against an index of its own built natively (the case of an index built on a
big machine and served on an old one).

    compare_cpus.py --cli build/bin/medsearch --python .venv/bin/python \
        --pythonpath build/python [--qemu qemu-x86_64] [--keep DIR]
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODES = ("bm25", "dense", "hybrid", "rerank")
QUERIES = {
    "tiny": ["mesothelioma chemotherapy stops working", "memory problems after chemo", "sunburn melanoma risk"],
    "real": ["recurrent mesothelioma", "chemo brain"],
}
# float32: the levels differ in summation order only. bfloat16 rounds both
# GEMM operands to 8-bit mantissas: about 1e-2 on a cosine.
TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2}


def tiny_model(real_dir: Path, out: Path) -> None:
    """A random BERT (seeded) with the real model's vocabulary and tokenizer files."""
    out.mkdir(parents=True)
    H, I, L, heads, P = 96, 192, 2, 3, 128
    vocab = sum(1 for _ in open(real_dir / "vocab.txt", encoding="utf-8"))
    for name in ("vocab.txt", "sentence_bert_config.json"):
        shutil.copy(real_dir / name, out / name)
    (out / "1_Pooling").mkdir()
    pooling = json.loads((real_dir / "1_Pooling" / "config.json").read_text())
    (out / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "word_embedding_dimension": H}))
    config = json.loads((real_dir / "config.json").read_text())
    config.update(hidden_size=H, intermediate_size=I, num_hidden_layers=L, num_attention_heads=heads,
                  max_position_embeddings=P, vocab_size=vocab)
    (out / "config.json").write_text(json.dumps(config, indent=1))
    rng = np.random.default_rng(14)
    tensors = {
        "embeddings.word_embeddings.weight": rng.normal(0, 0.5, (vocab, H)),
        "embeddings.position_embeddings.weight": rng.normal(0, 0.1, (P, H)),
        "embeddings.token_type_embeddings.weight": rng.normal(0, 0.1, (2, H)),
        "embeddings.LayerNorm.weight": 1 + rng.normal(0, 0.1, H),
        "embeddings.LayerNorm.bias": rng.normal(0, 0.1, H),
    }
    for l in range(L):
        pre = f"encoder.layer.{l}."
        for part in ("query", "key", "value"):
            tensors[pre + f"attention.self.{part}.weight"] = rng.normal(0, 0.3, (H, H))
            tensors[pre + f"attention.self.{part}.bias"] = rng.normal(0, 0.1, H)
        for name, shape in (("attention.output.dense", (H, H)), ("intermediate.dense", (I, H)), ("output.dense", (H, I))):
            tensors[pre + name + ".weight"] = rng.normal(0, 1 / np.sqrt(shape[1]), shape)
            tensors[pre + name + ".bias"] = rng.normal(0, 0.1, shape[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[pre + name + ".weight"] = 1 + rng.normal(0, 0.1, H)
            tensors[pre + name + ".bias"] = rng.normal(0, 0.1, H)
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for b in blobs:
            f.write(b)


def run(argv, env, what):
    t = time.perf_counter()
    p = subprocess.run(argv, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL {what}: exit {p.returncode}\n{' '.join(map(str, argv))}\n{p.stderr[-3000:]}")
    return p.stdout, time.perf_counter() - t


def one_cpu(name, prefix, env, precision, args, tiny, real_index, work):
    """Every run of one CPU: {key: [[passage_id, score, cosine], ...]}, the levels it reported, seconds."""
    runs, t0 = {}, time.perf_counter()
    cli = [*prefix, str(args.cli)]
    version, _ = run([*cli, "--version"], env, f"{name}: medsearch --version")
    level = next(l.split(": ", 1)[1].split()[0] for l in version.splitlines() if l.startswith("cpu level:"))
    idx = work / f"cli-{name}"
    run([*cli, "build", str(HERE / "corpus.jsonl"), "-o", str(idx), "--model-dir", str(tiny), "--precision", precision],
        env, f"{name}: medsearch build")
    for mode in MODES:
        for q in QUERIES["tiny"]:
            out, _ = run([*cli, "search", str(idx), q, "-k", "5", "--mode", mode, "--json", "--model-dir", str(tiny),
                          "--precision", precision], env, f"{name}: medsearch search --mode {mode}")
            hits = [json.loads(line) for line in out.splitlines() if line.strip()]
            runs[f"cli/tiny/{mode}/{q}"] = [[h["passage_id"], h["score"], h["explain"].get("cosine", 0.0)] for h in hits]
    out, _ = run([*prefix, str(args.python), str(HERE / "worker.py"), str(HERE / "corpus.jsonl"), str(tiny),
                  str(real_index), precision, json.dumps(QUERIES)], env, f"{name}: python worker")
    worker = json.loads(out)
    runs.update(worker["runs"])
    info = worker["build_info"]
    return runs, (level, info["selected"], info["encoder_float32"], info["distance_kernels"]), time.perf_counter() - t0


def shared_cosines(ref, got):
    """(passage id, cosine in got, cosine in ref) of the passages both hit lists have."""
    ref_cos = {pid: c for pid, _, c in ref}
    return [(pid, c, ref_cos[pid]) for pid, _, c in got if pid in ref_cos]


def same_ranking(ref, got, tol, order=True):
    """Problems between two hit lists: ids in the same order (two hits may swap
    only when their reference scores are within tol), scores and cosines within
    tol. order=False compares only the cosines of the passages both list."""
    problems = []
    if not order:
        return [f"{pid}: cosine {gc:.6f}, expected {rc:.6f}" for pid, gc, rc in shared_cosines(ref, got)
                if abs(gc - rc) > tol]
    if len(ref) != len(got):
        return [f"{len(got)} hits, expected {len(ref)}"]
    ref_score = {pid: s for pid, s, _ in ref}
    for i, ((rid, rs, rc), (gid, gs, gc)) in enumerate(zip(ref, got)):
        if rid != gid:
            other = ref_score.get(gid)
            if other is None or abs(other - rs) > tol * (1 + abs(rs)):
                problems.append(f"rank {i + 1}: {gid}, expected {rid}")
            continue
        if abs(gs - rs) > tol * (1 + abs(rs)):
            problems.append(f"rank {i + 1} {rid}: score {gs:.6f}, expected {rs:.6f}")
        if abs(gc - rc) > tol:
            problems.append(f"rank {i + 1} {rid}: cosine {gc:.6f}, expected {rc:.6f}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", type=Path, required=True)
    ap.add_argument("--python", type=Path, required=True)
    ap.add_argument("--pythonpath", type=Path, required=True)
    ap.add_argument("--model-dir", type=Path, default=None, help="the real model (default: the cache)")
    ap.add_argument("--qemu", default="qemu-x86_64")
    ap.add_argument("--keep", type=Path, default=None, help="keep the work files here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="medsearch-cpus-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(args.pythonpath.resolve()), MEDSEARCH_ALLOW_UNPINNED_MODEL="1")
    env.pop("MEDSEARCH_CPU_LEVEL", None)
    env.pop("MEDSEARCH_ENCODER_PRECISION", None)
    real_dir = args.model_dir or Path(subprocess.run(
        [str(args.python), "-c", "import medsearch; print(medsearch.Encoder().model_dir)"],
        env=env, capture_output=True, text=True, check=True).stdout.strip())
    tiny = work / "tiny-model"
    if not tiny.exists():
        tiny_model(real_dir, tiny)
    # The real model's index, built natively once (float32).
    real_index = work / "real-index"
    if not real_index.exists():
        run([str(args.cli), "build", str(HERE / "corpus.jsonl"), "-o", str(real_index), "--model-dir", str(real_dir),
             "--precision", "float32"], env, "native real-model build")
    info = json.loads(run([str(args.python), "-c", "import json, medsearch; print(json.dumps(medsearch.build_info()))"],
                          env, "build_info")[0])
    order = ["x86-64-v2", "x86-64-v3", "x86-64-v4", "amx"]
    top = order.index(info["supported"])
    levels = [l for l in info["compiled"] if order.index(l) <= top]
    # (name, command prefix, environment, precision, the level build_info must report)
    cpus = [("native", [], {}, "float32", info["supported"])]
    for level in reversed(levels[:-1]):
        cpus.append((f"native-{level}", [], {"MEDSEARCH_CPU_LEVEL": level}, "float32", level))
    if info["encoder_bfloat16"]:
        cpus.append(("native-bfloat16", [], {}, "bfloat16", info["supported"]))
    for model, level in (("Haswell", "x86-64-v3"), ("Nehalem", "x86-64-v2")):
        cpus.append((f"qemu-{model}", [args.qemu, "-cpu", model], {}, "float32", level))
    if shutil.which(args.qemu) is None:
        sys.exit(f"FAIL: {args.qemu} not found (Debian package qemu-user; tools/setup.sh installs it)")

    reference = None
    failed = False
    for name, prefix, extra, precision, want_level in cpus:
        runs, reported, seconds = one_cpu(name, prefix, {**env, **extra}, precision, args, tiny, real_index, work)
        cli_level, py_level, encoder_level, distances = reported
        problems = []
        if cli_level != want_level or py_level != want_level:
            problems.append(f"level: CLI {cli_level}, Python {py_level}, expected {want_level}")
        worst = 0.0  # the largest cosine difference to the reference, same passages
        if reference is None:
            reference = runs
        else:
            tol = TOLERANCE[precision]
            for key, ref in reference.items():
                got = runs.get(key, [])
                worst = max([worst] + [abs(gc - rc) for _, gc, rc in shared_cosines(ref, got)])
                # The reranker's trees turn bfloat16's 1e-2 on a feature into
                # different scores: there only the cosines are compared.
                order = precision == "float32" or "/rerank/" not in key
                for p in same_ranking(ref, got, tol, order):
                    problems.append(f"{key}: {p}")
        print(f"{'FAIL' if problems else 'ok  '} {name:16s} level {py_level:9s} encoder {encoder_level:9s} "
              f"distances {distances:11s} {precision:8s} {len(runs)} searches, max |cosine diff| {worst:.1e}, {seconds:5.1f} s")
        for p in problems[:20]:
            print("       ", p)
        failed |= bool(problems)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
