"""build_info() and MEDSEARCH_CPU_LEVEL, in child processes (the level is read once per process)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import medsearch
from conftest import CLI

LEVELS = ["x86-64-v2", "x86-64-v3", "x86-64-v4", "amx"]
TEXTS = ["what happens when first-line treatment for mesothelioma stops working", "chemo brain", "a"]


def child(code, level=None):
    env = {k: v for k, v in os.environ.items() if k not in ("MEDSEARCH_CPU_LEVEL", "MEDSEARCH_ENCODER_PRECISION")}
    if level is not None:
        env["MEDSEARCH_CPU_LEVEL"] = level
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(p.stdout), p.stderr


def test_reports_the_build_and_the_levels():
    info = medsearch.build_info()
    assert info["version"] == medsearch.__version__
    assert info["baseline"] == "x86-64-v2"
    assert info["compiled"][:3] == LEVELS[:3]
    assert info["supported"] in info["compiled"] or info["supported"] == "amx"
    assert LEVELS.index(info["selected"]) <= LEVELS.index(info["supported"])
    assert info["distance_kernels"] in ("scalar", "avx2", "avx512", "avx512_vnni")
    assert (info["encoder_bfloat16"] is None) == bool(info["encoder_bfloat16_reason"])
    assert "sse4.2" in info["cpu_features"].split()


def test_the_environment_lowers_every_kernel_table():
    supported = medsearch.build_info()["supported"]
    code = ("import json, medsearch; e = medsearch.Encoder(); "
            "print(json.dumps({'info': medsearch.build_info(), 'precision': e.precision}))")
    for level, distances in zip(LEVELS[:3], ("scalar", "avx2", "avx512")):
        if LEVELS.index(level) > LEVELS.index(supported):
            continue
        out, _ = child(code, level.split("-")[-1])
        info = out["info"]
        assert info["selected"] == level and info["requested"] == level.split("-")[-1]
        assert info["encoder_float32"] == level
        assert info["distance_kernels"].startswith(distances)
        assert info["encoder_bfloat16"] is None
        if supported == "amx":
            assert info["encoder_bfloat16_reason"] == "MEDSEARCH_CPU_LEVEL leaves AMX out"
        assert out["precision"] == "float32"  # "auto" without AMX


def test_a_higher_or_unknown_level_changes_nothing():
    supported = medsearch.build_info()["supported"]
    code = "import json, medsearch; print(json.dumps(medsearch.build_info()))"
    info, _ = child(code, "amx")
    assert info["selected"] == supported
    info, err = child(code, "v9")
    assert info["selected"] == supported
    assert "MEDSEARCH_CPU_LEVEL=v9 names no level" in err


@pytest.mark.skipif(medsearch.build_info()["supported"] != "amx", reason="needs a CPU with AMX")
def test_bfloat16_is_refused_below_amx():
    code = ("import json, medsearch\n"
            "try:\n    medsearch.Encoder(precision='bfloat16')\n    print(json.dumps('loaded'))\n"
            "except ValueError as e:\n    print(json.dumps(str(e)))\n")
    out, _ = child(code, "v4")
    assert "MEDSEARCH_CPU_LEVEL leaves AMX out" in out


def test_every_level_embeds_the_same_vectors():
    supported = medsearch.build_info()["supported"]
    code = ("import json, medsearch; e = medsearch.Encoder(precision='float32'); "
            f"print(json.dumps(e.embed({TEXTS!r}, kind='query').tolist()))")
    ref, _ = child(code)
    for level in LEVELS[:3]:
        if LEVELS.index(level) > LEVELS.index(supported):
            continue
        got, _ = child(code, level)
        assert np.abs(np.asarray(got) - np.asarray(ref)).max() < 1e-5, level


def test_cli_version_reports_the_level():
    out = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, check=True,
                         env=dict(os.environ, MEDSEARCH_CPU_LEVEL="v2")).stdout
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert lines["medsearch"] == medsearch.__version__
    assert lines["cpu level"] == "x86-64-v2 (MEDSEARCH_CPU_LEVEL=v2)"
    assert lines["distance kernels"] == "scalar" and lines["encoder float32"] == "x86-64-v2"
    assert lines["kernels compiled"].startswith("x86-64-v2 x86-64-v3 x86-64-v4")
