#!/usr/bin/env python3
"""A parallel trace.dat replay gives exactly the output of a one-helper replay.

For each real trace.dat given, replays it with one helper process (PTESCOPE_DAT_JOBS=1:
libtracecmd's own merge of every CPU) and compares the whole JSON report, byte for byte,
with parallel replays: 2, 3 and 5 helpers with the default time slices, then slice counts
that move the chunk boundaries (1 slice for 3 helpers: two helpers with nothing to do; 997
slices: boundaries everywhere, many inside bursts of records sharing a page). The first file
is also converted to trace.dat v6 (uncompressed, another page reader inside libtracecmd).

usage: check_parallel.py PTESCOPE TRACE.dat...
"""
import os
import shutil
import subprocess
import sys
import tempfile

RUNS = [(2, None), (3, None), (5, None), (3, 1), (2, 997)]


def replay(ptescope, path, jobs, chunks=None):
    env = dict(os.environ, PTESCOPE_DAT_JOBS=str(jobs))
    env.pop("PTESCOPE_DAT_CHUNKS", None)
    if chunks:
        env["PTESCOPE_DAT_CHUNKS"] = str(chunks)
    out = subprocess.run([ptescope, "replay", "--format", "json", "--quiet", path],
                         capture_output=True, text=True, timeout=900, env=env)
    if out.returncode != 0:
        sys.exit(f"ptescope replay {path} (jobs {jobs}, chunks {chunks}) failed "
                 f"({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def main():
    ptescope, dats = sys.argv[1], sys.argv[2:]
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        if shutil.which("trace-cmd"):
            v6 = tmp + "/v6.dat"
            conv = subprocess.run(["trace-cmd", "convert", "-i", dats[0], "--file-version", "6",
                                   "--compression", "none", "-o", v6],
                                  capture_output=True, timeout=600)
            if conv.returncode == 0:
                dats = dats + [v6]
            else:
                fails.append("trace-cmd convert to v6 failed")
        for dat in dats:
            ref = replay(ptescope, dat, 1)
            nforks = ref.count('"child_pid"')
            for jobs, chunks in RUNS:
                got = replay(ptescope, dat, jobs, chunks)
                if got.replace(v6 if dat.endswith("v6.dat") else dat, "") != \
                        ref.replace(v6 if dat.endswith("v6.dat") else dat, ""):
                    fails.append(f"{dat}: {jobs} helpers, {chunks or 'default'} slices: "
                                 "the report differs from one helper's")
            print(f"{os.path.basename(dat)}: {nforks} forks, {len(RUNS)} parallel replays compared")
    for f in fails:
        print("FAIL:", f)
    print(f"{len(dats)} files, {len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
