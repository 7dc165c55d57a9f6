#!/usr/bin/env python3
"""Writes the small synthetic trace.dat seeds of fuzz_dat's fast-walk part (analyzer/dat_fly.c).

Only what dat_fly.c reads: the v7 head, an options section holding a BUFFER and a KALLSYMS option,
a short kallsyms section (dat_kallsyms.c), the buffer section and two CPUs of ring-buffer pages
with every kind of event header (data events of both length forms, a time extend, an absolute
timestamp, padding, missed events stored and not).
No event formats, so libtracecmd refuses them: the seeds are for the in-process walk.
  fly-zstd.dat: CPU data in zstd chunks (the `zstd` program compresses them)
  fly-none.dat: no compression, the pages in place

usage: gen_fly_seeds.py CORPUS_DIR
"""
import struct
import subprocess
import sys

PAGE = 4096


def event(type_len, delta, payload=b"", arg=None):
    out = struct.pack("<I", type_len | (delta << 5))
    if arg is not None:
        out += struct.pack("<I", arg)
    return out + payload


def page(ts, events, lost=None, stored=True):
    data = b"".join(events)
    commit = len(data)
    if lost is not None:
        commit |= 1 << 31
        if stored:
            commit |= 1 << 30
            data += struct.pack("<Q", lost)
    return (struct.pack("<QQ", ts, commit) + data).ljust(PAGE, b"\0")


def pages_cpu0():
    first = page(1000, [
        event(3, 5, bytes(range(12))),
        event(30, 7, arg=1),
        event(0, 2, bytes(range(20)), arg=24),
        event(29, 3, b"\xaa" * 8, arg=12),
        event(31, 4, arg=2),
        event(2, 1, b"\x01\x02\x03\x04\x05\x06\x07\x08"),
    ], lost=42)
    second = page(1 << 28, [event(30, 1, arg=3), event(1, 9, b"wxyz"), event(4, 0, b"p" * 16)],
                  lost=0)
    second = second[:8] + struct.pack("<Q", struct.unpack_from("<Q", second, 8)[0]
                                      & ~(1 << 30)) + second[16:]
    return [first, second]


def pages_cpu1():
    return [page(1500, [event(2, 1, b"abcdefgh"), event(2, 600, b"ijklmnop")]),
            page(1600, [])]


KALLSYMS = (b"0000000000000000 A fixed_percpu_data\n"
            b"ffffffff81000000 T _text\n"
            b"ffffffff81000200 t copy_process\n"
            b"ffffffff81000200 t copy_process_alias\n"
            b"ffffffff81000100 t $x.1\n"
            b"ffffffffc0000000 t mod_fn\t[some_mod]\n")


def zstd(raw):
    return subprocess.run(["zstd", "-q", "-c", "-19"], input=raw, capture_output=True,
                          check=True).stdout


def zstd_chunks(pages):
    raw = b"".join(pages)
    comp = zstd(raw)
    return struct.pack("<I", 1) + struct.pack("<II", len(comp), len(raw)) + comp


def kallsyms_section(compressed):
    body = struct.pack("<I", len(KALLSYMS)) + KALLSYMS
    if compressed:
        comp = zstd(body)
        body = struct.pack("<II", len(comp), len(body)) + comp
    return struct.pack("<HHIQ", 19, 1 if compressed else 0, 0, len(body)) + body


def build(compressed):
    cpus = [pages_cpu0(), pages_cpu1()]
    head = b"\x17\x08\x44tracing" + b"7\0" + bytes([0, 8]) + struct.pack("<I", PAGE)
    head += (b"zstd\0" + b"1.5.4\0") if compressed else (b"none\0" + b"\0")
    opt_off = len(head) + 8
    datas = [zstd_chunks(p) if compressed else b"".join(p) for p in cpus]
    # the options section, then the buffer section, then the CPU data (page aligned)
    buf_opt_len = 8 + 1 + 7 + 4 + 4 + 20 * len(cpus)
    opts_size = (6 + buf_opt_len) + (6 + 8) + (6 + 8)
    ks_off = opt_off + 16 + opts_size
    ks = kallsyms_section(compressed)
    buf_sec = ks_off + len(ks)
    off = (buf_sec + 16 + PAGE - 1) // PAGE * PAGE
    table = []
    for d in datas:
        table.append((off, len(d) - 4 if compressed else len(d)))
        off = (off + len(d) + PAGE - 1) // PAGE * PAGE
    buf_opt = struct.pack("<Q", buf_sec) + b"\0" + b"global\0" + struct.pack("<II", PAGE, len(cpus))
    for i, (o, size) in enumerate(table):
        buf_opt += struct.pack("<IQQ", i, o, size)
    opts = (struct.pack("<HI", 3, len(buf_opt)) + buf_opt + struct.pack("<HIQ", 19, 8, ks_off)
            + struct.pack("<HIQ", 0, 8, 0))
    out = bytearray(head + struct.pack("<Q", opt_off))
    out += struct.pack("<HHIQ", 0, 0, 0, len(opts)) + opts + ks
    out += struct.pack("<HHIQ", 3, 1 if compressed else 0, 0, off - buf_sec - 16)
    for d, (o, _) in zip(datas, table):
        out = out.ljust(o, b"\0") + d
    return bytes(out)


def main():
    corpus = sys.argv[1]
    for name, compressed in (("fly-zstd.dat", True), ("fly-none.dat", False)):
        with open(f"{corpus}/{name}", "wb") as f:
            f.write(build(compressed))


if __name__ == "__main__":
    main()
