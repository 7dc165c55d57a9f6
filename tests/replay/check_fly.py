#!/usr/bin/env python3
"""The helper's own flyrecord walk (analyzer/dat_fly.c) gives exactly libtracecmd's output.

For each trace.dat given, the whole JSON report of a replay through libtracecmd's walk
(PTESCOPE_DAT_FLY=0) is compared byte for byte with the report of the fast walk required to
read the file whole (PTESCOPE_DAT_FLY=only: an error if it refused the file or stopped in
doubt) and with the default (the fast walk, libtracecmd where it stops). With trace-cmd
installed, also:
  - the first file converted to v7 without compression (pages read in place), fast walk only;
  - the first file converted to v6: the fast walk refuses it, the default reads it as before;
  - the uncompressed copy with one page in the middle of its busiest CPU made into one the
    fast walk doubts (a commit larger than the page's data area, which libtraceevent reads
    on past the data): the fast walk must stop there and libtracecmd go on from the same
    record, with a report identical to libtracecmd's alone;
  - the first file itself with a zstd chunk in the middle of its busiest CPU damaged (16
    bytes zeroed): the fast walk, whose thread decompresses ahead, stops there, the same.
One helper throughout (PTESCOPE_DAT_JOBS=1): parallel reads use libtracecmd.

Files after --fallback are ones the fast walk refuses (a trace.dat whose buffer lists no CPU
data while libtracecmd counts CPUs): only the default and libtracecmd's walk are compared.

usage: check_fly.py PTESCOPE TRACE.dat... [--fallback TRACE.dat...]
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile


def replay(ptescope, path, fly):
    env = dict(os.environ, PTESCOPE_DAT_JOBS="1")
    env.pop("PTESCOPE_DAT_FLY", None)
    if fly is not None:
        env["PTESCOPE_DAT_FLY"] = fly
    out = subprocess.run([ptescope, "replay", "--format", "json", "--quiet", path],
                         capture_output=True, text=True, timeout=900, env=env)
    return out.returncode, out.stdout, out.stderr.strip()


def cstr(data, off):
    end = data.index(b"\0", off)
    return data[off:end].decode(), end + 1


def cpu_data(data):
    """The top buffer's (cpu, offset, size) list of a v7 trace.dat (dat_fly.c's layout)."""
    off = 10
    _, off = cstr(data, off)
    off += 2 + 4
    _, off = cstr(data, off)
    _, off = cstr(data, off)
    (sec,) = struct.unpack_from("<Q", data, off)
    while sec:
        _, _, _, size = struct.unpack_from("<HHIQ", data, sec)
        p, end, sec = sec + 16, sec + 16 + size, 0
        while p < end:
            oid, olen = struct.unpack_from("<HI", data, p)
            body = p + 6
            p = body + olen
            if oid == 0:
                (sec,) = struct.unpack_from("<Q", data, body)
                break
            if oid == 3:
                q = body + 8
                _, q = cstr(data, q)
                _, q = cstr(data, q)
                _, ncpu = struct.unpack_from("<II", data, q)
                return [struct.unpack_from("<IQQ", data, q + 8 + 20 * i) for i in range(ncpu)]
    raise ValueError("no BUFFER option")


def doubt_copy(src, dst, page_size=4096):
    """@src (uncompressed v7) with a middle page of its busiest CPU given a commit the fast
    walk doubts."""
    data = bytearray(open(src, "rb").read())
    cpu, off, size = max(cpu_data(bytes(data)), key=lambda c: c[2])
    page = off + (size // page_size // 2) * page_size
    (commit,) = struct.unpack_from("<Q", data, page + 8)
    struct.pack_into("<Q", data, page + 8, (commit & ~((1 << 27) - 1)) | (page_size - 8))
    open(dst, "wb").write(data)
    return cpu


def zstd_doubt_copy(src, dst):
    """@src (zstd v7) with the middle chunk of its busiest CPU damaged."""
    data = bytearray(open(src, "rb").read())
    cpu, off, size = max(cpu_data(bytes(data)), key=lambda c: c[2])
    (chunks,) = struct.unpack_from("<I", data, off)
    p = off + 4
    for _ in range(chunks // 2):
        (csize,) = struct.unpack_from("<I", data, p)
        p += 8 + csize
    (csize,) = struct.unpack_from("<I", data, p)
    mid = p + 8 + csize // 2
    data[mid:mid + 16] = bytes(16)
    open(dst, "wb").write(data)
    return cpu


def compare(ptescope, dat, fails, only=True):
    rc0, ref, err0 = replay(ptescope, dat, "0")
    rcd, got, errd = replay(ptescope, dat, None)
    if (rcd, got, errd) != (rc0, ref, err0):
        fails.append(f"{dat}: the default replay differs from libtracecmd's walk")
    if not only:
        return ref
    rc1, fast, err1 = replay(ptescope, dat, "only")
    if rc1 != 0 or rc0 != 0:
        fails.append(f"{dat}: replay failed: libtracecmd {rc0} ({err0}), fast {rc1} ({err1})")
    elif fast != ref:
        fails.append(f"{dat}: the fast walk's report differs from libtracecmd's")
    return ref


def conversions(ptescope, first, tmp, fails):
    none, v6, doubt = tmp + "/none.dat", tmp + "/v6.dat", tmp + "/doubt.dat"
    for out, args in ((none, ["--compression", "none"]),
                      (v6, ["--file-version", "6", "--compression", "none"])):
        conv = subprocess.run(["trace-cmd", "convert", "-i", first, "-o", out] + args,
                              capture_output=True, timeout=600)
        if conv.returncode != 0:
            fails.append(f"trace-cmd convert {args} failed")
            return
    compare(ptescope, none, fails)
    compare(ptescope, v6, fails, only=False)
    rc, _, err = replay(ptescope, v6, "only")
    if rc == 0 or "file version 6" not in err:
        fails.append(f"v6: the fast walk did not refuse it ({rc}: {err})")
    cpu = doubt_copy(none, doubt)
    compare(ptescope, doubt, fails, only=False)
    rc, _, err = replay(ptescope, doubt, "only")
    if rc == 0 or "does not read as libtracecmd" not in err:
        fails.append(f"doubt: the fast walk did not stop on CPU {cpu}'s page ({rc}: {err})")
    cpu2 = zstd_doubt_copy(first, tmp + "/zdoubt.dat")
    compare(ptescope, tmp + "/zdoubt.dat", fails, only=False)
    rc, _, err = replay(ptescope, tmp + "/zdoubt.dat", "only")
    if rc == 0 or "does not read as libtracecmd" not in err:
        fails.append(f"zstd doubt: the fast walk did not stop on CPU {cpu2}'s chunk ({rc}: {err})")
    print(f"{os.path.basename(first)} converted: uncompressed v7, v6, a doubted page on CPU {cpu}, "
          f"a damaged chunk on CPU {cpu2}")


def main():
    ptescope, dats, fallback = sys.argv[1], sys.argv[2:], []
    if "--fallback" in dats:
        dats, fallback = dats[:dats.index("--fallback")], dats[dats.index("--fallback") + 1:]
    fails = []
    for dat in dats + fallback:
        ref = compare(ptescope, dat, fails, only=dat in dats)
        print(f"{os.path.basename(dat)}: {ref.count(chr(34) + 'child_pid' + chr(34))} forks")
    if shutil.which("trace-cmd"):
        with tempfile.TemporaryDirectory() as tmp:
            conversions(ptescope, dats[0], tmp, fails)
    for f in fails:
        print("FAIL:", f)
    print(f"{len(dats) + len(fallback)} files, {len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
