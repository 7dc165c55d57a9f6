#!/usr/bin/env python3
"""daemon/btf.c on this machine's kernel BTF, against an independent reader: dwarves' pahole
(struct layouts) and pfunct (function prototypes).

Fed by btf_query (tests/unit/btf_query.c: the reader's answers from the command line) and the
blob at $PTESCOPE_BTF or /sys/kernel/btf/vmlinux. For each member the default capture fetches
(task_struct.nivcsw, .real_parent, .sched_info.pcount/.run_delay, mm_struct.owner,
vm_area_struct.vm_mm) and a few more, the offset and size must equal pahole's (a nested path is
the sum of pahole's offsets, struct by struct); copy_page_range's src_vma must sit where pfunct
prints it; missing members and bitfields must be refused; and a lookup that scans every type
must take under 50 ms. Exit 77 (skip) when the blob or dwarves is missing.
"""

import os
import re
import shutil
import subprocess
import sys

MEMBERS = [
    ("task_struct", "nivcsw"),
    ("task_struct", "real_parent"),
    ("task_struct", "sched_info.pcount"),
    ("task_struct", "sched_info.run_delay"),
    ("mm_struct", "owner"),
    ("vm_area_struct", "vm_mm"),
    ("task_struct", "pid"),
    ("task_struct", "comm"),
    ("mm_struct", "mm_users"),  # inside mm_struct's anonymous struct on newer kernels
    ("vm_area_struct", "vm_start"),  # inside an anonymous union on newer kernels
]
LOOKUP_MAX_MS = 50.0

MEMBER_LINE = re.compile(r"^\s+(?P<decl>[^/{}]*?)\s*;\s*/\*\s*(?P<off>\d+)(?::\s*\d+)?\s+(?P<size>\d+)\s*\*/")
DECL_NAME = re.compile(r"(?P<name>\w+)\s*(?:\[\d*\]\s*)*(?::\s*\d+)?$")


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def pahole_members(btf, struct):
    """{name: (offset, size, type text)} of @struct's members as pahole prints them (members of
    anonymous structs and unions appear inline, with offsets from the outer struct)."""
    out = run(["pahole", "-C", struct, btf]).stdout
    if not out.strip():
        raise SystemExit(f"FAIL: pahole knows no struct {struct}")
    members = {}
    for line in out.splitlines():
        m = MEMBER_LINE.match(line)
        if not m:
            continue
        decl = m.group("decl")
        n = DECL_NAME.search(decl)
        if n and n.group("name") not in members:
            members[n.group("name")] = (int(m.group("off")), int(m.group("size")), decl[: n.start()].strip())
    return members


def pahole_member(btf, struct, path):
    """(offset, size) of @path in @struct by pahole, adding offsets along the path."""
    base = 0
    comps = path.split(".")
    for i, comp in enumerate(comps):
        members = pahole_members(btf, struct)
        if comp not in members:
            raise SystemExit(f"FAIL: pahole shows no member {comp} in struct {struct}")
        off, size, typ = members[comp]
        base += off
        if i + 1 < len(comps):
            if not typ.startswith("struct "):
                raise SystemExit(f"FAIL: {struct}.{comp} is '{typ}', not a struct, in pahole")
            struct = typ.split()[1]
    return base, size


def split_params(args):
    """The parameters of a C prototype's argument list, split at top-level commas."""
    parts, depth, cur = [], 0, ""
    for c in args:
        depth += c == "("
        depth -= c == ")"
        if c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
    return parts + [cur.strip()] if cur.strip() else parts


def pfunct_param(btf, func, param):
    out = run(["pfunct", "-F", "btf", "-P", "-f", func, btf]).stdout
    m = re.search(r"\b" + re.escape(func) + r"\((?P<args>.*)\);", out)
    if not m:
        raise SystemExit(f"FAIL: pfunct prints no prototype of {func}: {out!r}")
    for i, p in enumerate(split_params(m.group("args")), 1):
        fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", p)
        name = fp.group(1) if fp else re.findall(r"\w+", p)[-1]
        if name == param:
            return i
    raise SystemExit(f"FAIL: pfunct's {func} has no parameter {param}: {m.group(0)}")


def query(tool, btf, *args):
    r = run([tool, btf, *args])
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def main():
    tool = sys.argv[1]
    btf = os.environ.get("PTESCOPE_BTF", "/sys/kernel/btf/vmlinux")
    if not os.path.exists(btf):
        skip(f"{btf} is absent (kernel without CONFIG_DEBUG_INFO_BTF)")
    if not shutil.which("pahole") or not shutil.which("pfunct"):
        skip("pahole/pfunct missing (Debian package dwarves, scripts/packages/test.txt)")
    failures = 0
    for struct, path in MEMBERS:
        want = pahole_member(btf, struct, path)
        rc, out, err = query(tool, btf, "member", struct, path)
        got = tuple(int(x) for x in out.split()) if rc == 0 else (rc, err)
        ok = got == want
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {struct}.{path}: reader {got} pahole (offset, size) {want}")
    want = pfunct_param(btf, "copy_page_range", "src_vma")
    rc, out, err = query(tool, btf, "param", "copy_page_range", "src_vma")
    ok = rc == 0 and int(out) == want
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} copy_page_range(src_vma): reader {out or err} pfunct {want}")
    for args, what in [
        (("member", "task_struct", "no_such_member"), "has no member no_such_member"),
        (("member", "task_struct", "real_parent.pid"), "not a struct"),
        (("param", "copy_page_range", "no_such_param"), "no parameter"),
    ]:
        rc, out, err = query(tool, btf, *args)
        ok = rc == 2 and what in err
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} refused {' '.join(args)}: rc {rc} {err}")
    rc, out, err = query(tool, btf, "time", "no_such_struct", "x")
    m = re.search(r"load ([\d.]+) ms lookup ([\d.]+) ms", out)
    ok = rc == 0 and m is not None and float(m.group(2)) < LOOKUP_MAX_MS
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} a lookup over every type under {LOOKUP_MAX_MS} ms: {out or err}")
    if failures:
        print(f"{failures} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
