#!/usr/bin/env python3
"""Checks that the per-level kernel objects cannot leak into baseline code.

The library is compiled for a baseline (x86-64-v2) except its per-level
kernel objects (CMakeLists.txt: medsearch_isa_<level>). If such an object
defined a weak or unique symbol (an inline function, a template instance, a
static local's guard) that a baseline object also defines, the linker would
keep one copy for both, and a baseline caller could run AVX-512 code on a CPU
without it. So, from `nm` of the objects:

  1. A level's objects define no weak (W, V) or unique (u) symbol outside that
     level's own names: its namespace (isa_vN) and its renamed Eigen
     (medsearch_eigen_vN). DW.ref.__gxx_personality_v0 (a pointer to the one
     personality routine, the same bytes everywhere) is the exception.
  2. Each dense kernel object defines its level's table, isa_vN::kDense.
  3. No other member of the library defines an Eigen symbol (Eigen is only
     instantiated in the kernel objects).

Usage (ctest runs it, CMakeLists.txt):
  check_symbols.py NM ARCHIVE LEVEL=OBJ,OBJ,... [LEVEL=...]
Exit status 1 with the offending symbols when a check fails.
"""
import subprocess
import sys
from pathlib import Path

HARMLESS = {"DW.ref.__gxx_personality_v0"}


def defined(nm, path):
    """(member, type, mangled name) of every defined symbol; member is "" for an object."""
    out = subprocess.run([nm, "-A", "--defined-only", str(path)], check=True, capture_output=True, text=True).stdout
    symbols = []
    prefix = str(path) + ":"
    for line in out.splitlines():
        parts = line.split()  # "PATH[:MEMBER]:ADDRESS", type, name
        if len(parts) != 3 or not parts[0].startswith(prefix):
            continue
        where = parts[0][len(prefix):]
        member = where.rpartition(":")[0]
        symbols.append((member, parts[1], parts[2]))
    return symbols


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    nm, archive = argv[1], Path(argv[2])
    failures, kernel_members = [], set()
    for spec in argv[3:]:
        level, _, objs = spec.partition("=")
        tags = (f"isa_{level}", f"medsearch_eigen_{level}")
        for obj in filter(None, objs.split(",")):
            obj = Path(obj)
            kernel_members.add(obj.name)
            names = set()
            for _, kind, name in defined(nm, obj):
                names.add(name)
                if kind in "WVu" and name not in HARMLESS and not any(t in name for t in tags):
                    failures.append(f"{level}: {obj.name} defines shareable {kind} {name}")
            if obj.name.startswith("dense_eigen") and not any(f"{len(tags[0])}{tags[0]}6kDense" in n for n in names):
                failures.append(f"{level}: {obj.name} does not define isa_{level}::kDense")
    if not kernel_members:
        failures.append("no kernel objects given")
    for member, kind, name in defined(nm, archive):
        if member in kernel_members:
            continue
        if "5Eigen" in name or "medsearch_eigen" in name:
            failures.append(f"baseline member {member} defines Eigen symbol {kind} {name}")
    for f in failures:
        print("FAIL", f)
    if not failures:
        print(f"ok: {len(kernel_members)} kernel object names, no shareable symbol outside their levels, "
              f"no Eigen in the rest of {archive.name}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
