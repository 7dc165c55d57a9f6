"""Real-kernel VM harness: Debian's kernels under qemu TCG with a busybox initramfs.

Fed by the host's Debian packages (qemu-system-x86, busybox-static, trace-cmd, redis-server when
present) and by a Debian kernel chosen by a spec SUITE[-FLAVOUR] (bookworm, the default, is
linux-image-6.1.0-*-amd64; trixie, sid; flavours rt and cloud), fetched with `apt-get download`
through private apt lists into a cache directory outside the source tree. Builds an initramfs
(busybox, the 9p/virtio modules found by name in the kernel package, decompressed, the binaries
under test with their shared libraries, our workload programs), boots it with a hard timeout, runs
a scenario shell script inside the guest with a host directory shared over virtio-9p at /host, and
returns what the scenario left there. Feeds tests/vm/record-fixtures, tests/vm/kernel-probe and
the `vm` ctests.

Sized for one boot per test (about 7 s of boot under TCG on 2 host cores) and scenario outputs of a
few MB to a few hundred MB; the guest has 1 GiB of RAM and 2 vCPUs unless told otherwise.
"""

import argparse
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

SKIP = 77  # ctest SKIP_RETURN_CODE
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_KERNEL = "bookworm"
# Suite of a kernel spec: its suites on the main archive, on the security archive, and the form of
# its kernel release (the part of the package name between "linux-image-" and the flavour).
SUITES = {
    "bookworm": (["bookworm", "bookworm-updates"], ["bookworm-security"], r"6\.1\.0-\d+"),
    "trixie": (["trixie", "trixie-updates"], ["trixie-security"], r"6\.12\.\d+\+deb13"),
    "sid": (["sid"], [], r"\d+\.\d+(?:\.\d+)?\+deb\d+"),
}
FLAVOURS = {"": "amd64", "rt": "rt-amd64", "cloud": "cloud-amd64"}
MACHINE_SOURCES = "/etc/apt/sources.list.d/debian.sources"
APT_REFRESH_S = 12 * 3600
# Loaded with their dependencies (each module's own "depends=" line), in dependency order: the
# host directory over virtio-9p, or, for kernels without 9p (the cloud flavour), an ext4 disk
# image the host fills before the boot and reads back after it.
GUEST_MODULES = ["virtio_pci", "9pnet_virtio", "9p"]
DISK_MODULES = ["virtio_pci", "virtio_blk", "ext4"]
DISK_MIB = 4096  # sparse: only what the scenario writes takes host disk
TRACEEVENT_PLUGINS = "/usr/lib/x86_64-linux-gnu/traceevent/plugins"
WORKLOADS = ["forker", "forkstorm", "hog", "costload", "cloner"]

# The start of the daemon tests' guest scenarios (test_live_graph, test_always_on, test_passes):
# $T the tracefs, $O the output directory in the guest's tmpfs, copied to the share's out/ at the
# end (on 6.12 and 7.2 a daemon writing its stderr straight into the 9p share died or never got
# ready), loopback up for the HTTP API, and the sanitizers' leak checks off.
GUEST_PRELUDE = r"""
set -u
T=/sys/kernel/tracing
O=/tmp/out
mkdir -p $O /host/out
trap 'cp -r $O/. /host/out/' EXIT
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
export ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0
"""


class VmUnavailable(Exception):
    """Something the VM needs cannot be had on this machine: the test should skip."""


class VmFailed(Exception):
    """The VM ran but the scenario failed or timed out; the message carries the console."""


def log(msg):
    print(f"vm: {msg}", file=sys.stderr, flush=True)


def default_cache_dir(build_dir=None):
    if os.environ.get("PTESCOPE_VM_CACHE"):
        return os.environ["PTESCOPE_VM_CACHE"]
    if build_dir:
        return os.path.join(build_dir, "vm-cache")
    return os.path.join(os.path.expanduser("~"), ".cache", "ptescope-vm")


def default_kernel_spec():
    return os.environ.get("PTESCOPE_VM_KERNEL") or DEFAULT_KERNEL


def add_kernel_option(parser):
    """Adds --kernel SPEC (default: $PTESCOPE_VM_KERNEL, else bookworm) to an argparse parser."""
    def spec(text):
        try:
            parse_spec(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e))
        return text

    parser.add_argument("--kernel", default=default_kernel_spec(), metavar="SPEC", type=spec,
                        help="SUITE[-FLAVOUR]: suite " + "|".join(SUITES) + ", flavour rt|cloud "
                        "(default: $PTESCOPE_VM_KERNEL or %(default)s)")


def parse_spec(spec):
    """(suite, flavour) of a spec such as "trixie-rt"; raises ValueError on an unknown one (a
    mistake to report, not a reason to skip)."""
    suite, _, flavour = spec.partition("-")
    if suite not in SUITES or flavour not in FLAVOURS:
        raise ValueError(f"unknown kernel spec {spec!r}: want SUITE[-FLAVOUR] with SUITE in "
                         f"{', '.join(SUITES)} and FLAVOUR rt or cloud")
    return suite, flavour


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def _machine_archives():
    """(main URI, security URI, keyring) from the machine's deb822 sources, or Debian's defaults."""
    main, security = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    try:
        with open(MACHINE_SOURCES) as f:
            stanzas = f.read().split("\n\n")
    except OSError:
        return main, security, keyring
    for st in stanzas:
        fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", st, re.M))
        uri = fields.get("URIs", "").split()
        if not uri or "deb" not in fields.get("Types", "").split():
            continue
        if any(s.endswith("-security") for s in fields.get("Suites", "").split()):
            security = uri[0]
        else:
            main = uri[0]
        if fields.get("Signed-By", "").startswith("/"):
            keyring = fields["Signed-By"].strip()
    return main, security, keyring


class PrivateApt:
    """apt-get/apt-cache on one suite through a sources list and state kept in the cache dir.

    The machine's own apt configuration is never touched: its archive URIs and keyring are reused.
    """

    def __init__(self, cache_dir, suite):
        self.dir = os.path.join(cache_dir, "apt", suite)
        self.sources = os.path.join(self.dir, "sources.list")
        self.lists = os.path.join(self.dir, "lists")
        for d in (os.path.join(self.lists, "partial"),
                  os.path.join(self.dir, "cache", "archives", "partial")):
            os.makedirs(d, exist_ok=True)
        main, security, keyring = _machine_archives()
        on_main, on_security, _ = SUITES[suite]
        lines = [f"deb [signed-by={keyring}] {main} {s} main" for s in on_main]
        lines += [f"deb [signed-by={keyring}] {security} {s} main" for s in on_security]
        text = "\n".join(lines) + "\n"
        if not os.path.exists(self.sources) or open(self.sources).read() != text:
            with open(self.sources, "w") as f:
                f.write(text)

    def opts(self):
        o = {"Dir::Etc::sourcelist": self.sources, "Dir::Etc::sourceparts": "/dev/null",
             "Dir::State::Lists": self.lists, "Dir::Cache": os.path.join(self.dir, "cache"),
             "Dir::State::status": "/dev/null"}
        if os.geteuid() == 0:
            o["APT::Sandbox::User"] = "root"  # the _apt user may not write into the cache dir
        return [a for k, v in o.items() for a in ("-o", f"{k}={v}")]

    def update(self, max_age_s=APT_REFRESH_S):
        stamp = os.path.join(self.dir, "updated")
        if os.path.exists(stamp) and time.time() - os.path.getmtime(stamp) < max_age_s:
            return
        log(f"apt-get update ({os.path.basename(self.dir)}, private lists in {self.dir})")
        _run(["apt-get"] + self.opts() + ["-q", "update"])
        open(stamp, "w").close()

    def search(self, regex):
        out = _run(["apt-cache"] + self.opts() + ["search", "--names-only", regex]).stdout
        return [line.split(" ", 1)[0] for line in out.splitlines() if line]

    def version(self, pkg):
        out = _run(["apt-cache"] + self.opts() + ["show", "--no-all-versions", pkg]).stdout
        m = re.search(r"^Version:\s*(\S+)", out, re.M)
        if not m:
            raise VmUnavailable(f"apt-cache show {pkg}: no version")
        return m.group(1)

    def download(self, pkg, dest):
        _run(["apt-get"] + self.opts() + ["-q", "download", pkg], cwd=dest)


def _release_key(release):
    return tuple(int(x) for x in re.findall(r"\d+", release))


def kernel_packages(apt, suite, flavour):
    """The packages that make up the newest kernel of a suite and flavour, main package first.

    Bookworm and trixie ship one linux-image-REL-FLAVOUR; newer suites split it into
    linux-binary (vmlinuz), linux-modules and linux-base (config, System.map).
    """
    arch = FLAVOURS[flavour]
    rel_re = SUITES[suite][2]
    names = apt.search(r"^linux-(image|binary|modules|base)-[0-9]")  # POSIX regex: filter below
    pat = re.compile(rf"^linux-(image|binary|modules|base)-({rel_re})-{re.escape(arch)}$")
    by_rel = {}
    for n in names:
        m = pat.match(n)
        if m:
            by_rel.setdefault(m.group(2), set()).add(m.group(1))
    if not by_rel:
        raise VmUnavailable(f"no {suite} kernel of flavour {arch} offered by the archive")
    rel = max(by_rel, key=_release_key)
    kinds = ["binary", "modules", "base"] if "binary" in by_rel[rel] else ["image"]
    return [f"linux-{k}-{rel}-{arch}" for k in kinds if k in by_rel[rel]]


def _fetch_debs(cache_dir, spec, fetch):
    """The cached .deb paths of a spec's kernel, downloading the newest when `fetch` allows."""
    suite, flavour = parse_spec(spec)
    debs_dir = os.path.join(cache_dir, "debs")
    os.makedirs(debs_dir, exist_ok=True)
    record = os.path.join(cache_dir, "kernels", spec + ".json")
    os.makedirs(os.path.dirname(record), exist_ok=True)
    try:
        if not fetch:
            raise VmUnavailable("fetching disabled")
        apt = PrivateApt(cache_dir, suite)
        with _locked(os.path.join(apt.dir, "lock")):
            apt.update()
            debs = []
            for pkg in kernel_packages(apt, suite, flavour):
                deb = os.path.join(debs_dir, f"{pkg}_{apt.version(pkg)}_amd64.deb")
                if not os.path.exists(deb):
                    log(f"downloading {pkg} into {debs_dir}")
                    apt.download(pkg, debs_dir)
                if not os.path.exists(deb):
                    raise VmUnavailable(f"apt-get download {pkg} left no {deb}")
                debs.append(deb)
    except (OSError, subprocess.CalledProcessError, VmUnavailable) as e:
        err = (getattr(e, "stderr", "") or str(e)).strip()
        if not os.path.exists(record):
            raise VmUnavailable(f"kernel {spec}: {err}")
        with open(record) as f:
            debs = json.load(f)["debs"]
        log(f"kernel {spec}: {err.splitlines()[-1] if err else 'offline'}; using cached "
            f"{', '.join(os.path.basename(d) for d in debs)}")
        return debs
    with open(record + ".tmp", "w") as f:
        json.dump({"spec": spec, "debs": debs}, f)
    os.replace(record + ".tmp", record)
    return debs


class _locked:
    """An exclusive flock on a file, so helpers sharing a cache dir do not run apt at once."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        import fcntl
        self.f = open(self.path, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.f.close()


def _module_name(filename):
    return re.sub(r"\.ko(\.(xz|zst|gz))?$", "", filename).replace("-", "_")


def _module_bytes(path):
    """A module's ELF bytes, decompressed on the host (busybox insmod may not decompress)."""
    if path.endswith(".ko.xz"):
        import lzma
        with lzma.open(path) as f:
            return f.read()
    if path.endswith(".ko.gz"):
        import gzip
        with gzip.open(path) as f:
            return f.read()
    if path.endswith(".ko.zst"):
        try:
            return subprocess.run(["zstd", "-dcq", path], check=True,
                                  stdout=subprocess.PIPE).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise VmUnavailable(f"cannot decompress {path} (apt-get install zstd): {e}")
    with open(path, "rb") as f:
        return f.read()


class Kernel:
    """An unpacked kernel: vmlinuz, modules, config, release string, package names/versions."""

    def __init__(self, root, debs, spec):
        self.root = root
        self.debs = list(debs)
        self.deb = self.debs[0]
        self.spec = spec
        found = sorted(glob.glob(os.path.join(root, "boot", "vmlinuz-*")))
        found += sorted(glob.glob(os.path.join(root, "usr", "lib", "modules", "*", "vmlinuz")))
        if not found:
            raise VmUnavailable(f"no vmlinuz in {root}")
        self.vmlinuz = found[-1]
        if os.path.basename(self.vmlinuz) == "vmlinuz":
            self.release = os.path.basename(os.path.dirname(self.vmlinuz))
        else:
            self.release = os.path.basename(self.vmlinuz)[len("vmlinuz-"):]
        self.modroot = next((d for d in (os.path.join(root, "lib", "modules", self.release),
                                         os.path.join(root, "usr", "lib", "modules", self.release))
                             if os.path.isdir(d)), None)
        if not self.modroot:
            raise VmUnavailable(f"no modules for {self.release} in {root}")
        self.moddir = os.path.join(self.modroot, "kernel")
        self.config = next((p for p in (os.path.join(root, "boot", "config-" + self.release),
                                        os.path.join(self.modroot, "config"))
                            if os.path.exists(p)), None)
        self.packages = []
        for d in self.debs:
            base = os.path.basename(d)[:-len(".deb")].split("_")
            self.packages.append((base[0], base[1] if len(base) > 1 else "?"))
        self.package, self.version = self.packages[0]

    def describe(self):
        d = {"spec": self.spec, "package": self.package, "package_version": self.version,
             "release": self.release}
        if len(self.packages) > 1:
            d["packages"] = [f"{p}={v}" for p, v in self.packages]
        return d

    def config_options(self):
        """CONFIG_* settings from the package's kernel config ({} when it ships none)."""
        if not self.config:
            return {}
        with open(self.config) as f:
            return dict(re.findall(r"^(CONFIG_\w+)=(.*)$", f.read(), re.M))

    def share_mode(self):
        """"9p" when the kernel has the 9p modules, else "disk" (see DISK_MODULES)."""
        if getattr(self, "_share", None):
            return self._share
        try:
            self.guest_modules(GUEST_MODULES)
            self._share = "9p"
        except VmUnavailable as e:
            try:
                self.guest_modules(DISK_MODULES)
            except VmUnavailable:
                raise e
            self._share = "disk"
        return self._share

    def guest_modules(self, names=None):
        """[(module name, host path)] of `names` and their dependencies, dependencies first.

        Modules are found by name in the package's tree (plain or compressed); names the kernel
        has built in (modules.builtin) are skipped.
        """
        index = {}
        for dirpath, _, files in os.walk(self.moddir):
            for fn in files:
                if re.search(r"\.ko(\.(xz|zst|gz))?$", fn):
                    index[_module_name(fn)] = os.path.join(dirpath, fn)
        builtin = set()
        p = os.path.join(self.modroot, "modules.builtin")
        if os.path.exists(p):
            with open(p) as f:
                builtin = {_module_name(os.path.basename(ln.strip())) for ln in f if ln.strip()}
        order = []

        def visit(name, chain):
            if name in order or name in builtin:
                return
            if name in chain:
                raise VmUnavailable(f"module dependency loop: {chain + [name]}")
            if name not in index:
                raise VmUnavailable(f"kernel {self.release} has no module {name} (needed by "
                                    f"{chain[-1] if chain else 'the guest'})")
            m = re.search(rb"depends=([\w,-]*)", _module_bytes(index[name]))
            for dep in (m.group(1).decode().split(",") if m else []):
                if dep:
                    visit(dep.replace("-", "_"), chain + [name])
            order.append(name)

        if names is None:
            names = GUEST_MODULES if self.share_mode() == "9p" else DISK_MODULES
        for n in names:
            visit(n, [])
        return [(n, index[n]) for n in order]


def _unpack(cache_dir, debs):
    name = os.path.basename(debs[0])[:-len(".deb")]
    root = os.path.join(cache_dir, "kernels", name)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with _locked(root + ".lock"):
        if os.path.exists(os.path.join(root, ".unpacked")):
            return root
        shutil.rmtree(root, ignore_errors=True)
        for deb in debs:
            try:
                _run(["dpkg-deb", "-x", deb, root])
            except (OSError, subprocess.CalledProcessError) as e:
                raise VmUnavailable(f"cannot unpack {deb}: {getattr(e, 'stderr', e)}")
        open(os.path.join(root, ".unpacked"), "w").close()
    return root


def get_kernel(cache_dir, spec=None, fetch=True):
    """Returns the newest kernel of `spec` (SUITE[-FLAVOUR], default $PTESCOPE_VM_KERNEL or
    bookworm), downloading and unpacking it into cache_dir if needed.

    PTESCOPE_VM_KERNEL_DEB names a .deb to use instead. Without network the kernel last fetched
    for the spec is used. Raises VmUnavailable when none can be had.
    """
    spec = spec or default_kernel_spec()
    parse_spec(spec)
    os.makedirs(cache_dir, exist_ok=True)
    deb = os.environ.get("PTESCOPE_VM_KERNEL_DEB")
    debs = [os.path.abspath(deb)] if deb else _fetch_debs(cache_dir, spec, fetch)
    return Kernel(_unpack(cache_dir, debs), debs, spec)


def find_qemu():
    q = shutil.which("qemu-system-x86_64")
    if not q:
        raise VmUnavailable("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    return q


def find_busybox():
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            try:
                out = subprocess.run(["file", "-L", p], stdout=subprocess.PIPE, text=True).stdout
            except OSError:
                out = ""
            # A dynamically linked busybox would need its libraries too: insist on the static one.
            if "dynamically linked" not in out:
                return p
    raise VmUnavailable("static busybox not found (apt-get install busybox-static)")


def shared_libs(binary):
    """Absolute paths of the shared libraries `binary` loads (ldd), loader included."""
    try:
        out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True).stdout
    except OSError:
        return []
    libs = []
    for line in out.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1))
    return libs


class Initramfs:
    """Files for a newc cpio archive, written without the cpio tool."""

    def __init__(self):
        self.entries = {}  # guest path -> ("dir", mode) | ("file", mode, host path or bytes) | ("link", target)

    def add_dir(self, path, mode=0o755):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in self.entries:
                self.entries[p] = ("dir", mode)

    def add_file(self, path, src, mode=None):
        path = path.strip("/")
        self.add_dir(os.path.dirname(path))
        if mode is None:
            mode = stat.S_IMODE(os.stat(src).st_mode) if isinstance(src, str) else 0o644
        self.entries[path] = ("file", mode, src)

    def add_symlink(self, path, target):
        path = path.strip("/")
        self.add_dir(os.path.dirname(path))
        self.entries[path] = ("link", target)

    def add_binary(self, path, src):
        """Adds an executable and every shared library it needs, at the paths ldd reports."""
        self.add_file(path, src, 0o755)
        for lib in shared_libs(src):
            if lib.strip("/") not in self.entries:
                self.add_file(lib, os.path.realpath(lib), 0o755)

    def write(self, out):
        ino = 1000
        with open(out + ".tmp", "wb") as f:
            for path in sorted(self.entries, key=lambda p: (p.count("/"), p)):
                e = self.entries[path]
                if e[0] == "dir":
                    mode, data = stat.S_IFDIR | e[1], b""
                elif e[0] == "link":
                    mode, data = stat.S_IFLNK | 0o777, e[1].encode()
                else:
                    mode = stat.S_IFREG | e[1]
                    if isinstance(e[2], bytes):
                        data = e[2]
                    else:
                        with open(e[2], "rb") as src:
                            data = src.read()
                ino += 1
                _cpio_entry(f, path, mode, data, ino)
            _cpio_entry(f, "TRAILER!!!", 0, b"", 0)
        os.replace(out + ".tmp", out)


def _cpio_entry(f, name, mode, data, ino):
    nlink = 2 if stat.S_ISDIR(mode) else 1
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join(f"{v:08X}" for v in (
        ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
    f.write(hdr.encode() + name_b)
    f.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    f.write(data)
    f.write(b"\0" * ((4 - len(data) % 4) % 4))


INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t tmpfs tmpfs /tmp
for m in $(cat /etc/modules-order); do
	insmod /lib/modules/$m || echo "init: insmod $m failed"
done
mkdir -p /host
if [ -e /etc/share-disk ]; then
	for i in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
	mount -t ext4 /dev/vda /host
else
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /host
fi || { echo "PTESCOPE-VM: cannot mount the share"; poweroff -f; }
echo "PTESCOPE-VM: booted $(uname -r), $(nproc) cpus, uptime $(cut -d' ' -f1 /proc/uptime)s"
cd /host
( sh /host/scenario.sh; echo $? > /host/exit-status ) 2>&1 | tee /host/scenario.log
echo "PTESCOPE-VM: scenario exit $(cat /host/exit-status)"
cd /
sync
umount /host
poweroff -f
"""


def build_initramfs(out, kernel, binaries=(), extra_files=()):
    """Writes an initramfs to `out`.

    binaries: (guest path, host path) executables, copied with their shared libraries.
    extra_files: (guest path, host path) plain files or directories.
    """
    img = Initramfs()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "root",
              "host", "lib64"):
        img.add_dir(d)
    img.add_file("bin/busybox", find_busybox(), 0o755)
    img.add_file("init", INIT_SCRIPT.encode(), 0o755)
    img.add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    img.add_file("etc/group", b"root:x:0:\n")
    order = []
    for name, src in kernel.guest_modules():
        img.add_file(f"lib/modules/{name}.ko", _module_bytes(src), 0o644)
        order.append(name + ".ko")
    img.add_file("etc/modules-order", ("\n".join(order) + "\n").encode())
    if kernel.share_mode() == "disk":
        img.add_file("etc/share-disk", b"")
    for guest, host in binaries:
        img.add_binary(guest, host)
    if os.path.isdir(TRACEEVENT_PLUGINS):
        for p in sorted(glob.glob(os.path.join(TRACEEVENT_PLUGINS, "*.so"))):
            img.add_file(p, p, 0o755)
    for guest, host in extra_files:
        if os.path.isdir(host):
            for dirpath, _, files in os.walk(host):
                for fn in files:
                    hp = os.path.join(dirpath, fn)
                    img.add_file(os.path.join(guest, os.path.relpath(hp, host)), hp)
        else:
            img.add_file(guest, host)
    img.write(out)
    return out


def standard_binaries(workloads_dir, ptescope=None, need_trace_cmd=True):
    """The binaries every scenario may use: trace-cmd, redis (if installed), workloads, ptescope."""
    bins = []
    tc = shutil.which("trace-cmd")
    if need_trace_cmd and not tc:
        raise VmUnavailable("trace-cmd not found (apt-get install trace-cmd)")
    if tc:
        bins.append(("usr/bin/trace-cmd", tc))
    for r in ("redis-server", "redis-cli"):
        p = shutil.which(r)
        if p:
            bins.append(("usr/bin/" + r, p))
    for w in WORKLOADS:
        p = os.path.join(workloads_dir, w)
        if not os.access(p, os.X_OK):
            raise VmUnavailable(f"workload {p} not built (build target vm-workloads)")
        bins.append(("usr/bin/" + w, p))
    if ptescope:
        bins.append(("usr/bin/ptescope", ptescope))
        # ptescope reads trace.dat files through its helper, found beside it
        helper = os.path.join(os.path.dirname(ptescope), "ptescope-dat-reader")
        if not os.access(helper, os.X_OK):
            raise RuntimeError(f"{helper} not built (it ships with ptescope)")
        bins.append(("usr/bin/ptescope-dat-reader", helper))
    return bins


STEP_PREFIXES = ("PTESCOPE-VM:", "PTESCOPE-STEP:")


def qemu_command(kernel, initramfs, share_dir, mem_mib=1024, cpus=2, cmdline_extra="",
                 icount=False):
    """The qemu command line of boot() (see there)."""
    # no_timer_check: under TCG on a loaded host the IO-APIC timer check can miss its ticks and
    # panic the boot ("IO-APIC + timer doesn't work"; seen with the cloud flavour)
    append = "console=ttyS0 panic=-1 loglevel=4 rdinit=/init no_timer_check"
    if icount:
        # Guest time advances with executed instructions: repeatable figures on a busy host.
        # lpj= skips the delay-loop calibration, which would otherwise depend on the shift.
        accel = ["-accel", "tcg,thread=single", "-icount", "shift=3,sleep=on"]
        cpus = 1
        append += " lpj=4000000"
    else:
        # Single-threaded TCG: with thread=multi the guest was seen locking up (soft lockup on
        # CPU 0) while trace-cmd switched tracers; single is also no slower on 2 host cores.
        accel = ["-accel", "tcg,thread=" + os.environ.get("PTESCOPE_VM_TCG_THREAD", "single")]
    return [find_qemu()] + accel + [
        "-m", str(mem_mib), "-smp", str(cpus), "-kernel", kernel.vmlinuz, "-initrd", initramfs,
        "-append", (append + " " + cmdline_extra).strip(),
        "-display", "none", "-monitor", "none",
        "-serial", "file:" + os.path.join(share_dir, "console.log"), "-no-reboot", "-nic", "none",
    ] + _share_args(kernel, share_dir)


def _share_args(kernel, share_dir):
    if kernel.share_mode() == "disk":
        return ["-drive", f"file={_disk_image(share_dir)},format=raw,if=virtio"]
    return ["-fsdev", f"local,id=host,path={share_dir},security_model=none",
            "-device", "virtio-9p-pci,fsdev=host,mount_tag=host"]


def _disk_image(share_dir):
    return share_dir.rstrip("/") + ".img"


def _disk_fill(share_dir):
    """Makes the ext4 image the guest mounts at /host, holding share_dir's files (e2fsprogs)."""
    img = _disk_image(share_dir)
    if os.path.exists(img):
        os.unlink(img)
    with open(img, "wb") as f:
        f.truncate(DISK_MIB << 20)
    try:
        _run(["mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", share_dir, img])
    except (OSError, subprocess.CalledProcessError) as e:
        raise VmUnavailable(f"mkfs.ext4 -d (apt-get install e2fsprogs): {getattr(e, 'stderr', e)}")


def _disk_read(share_dir):
    """Copies what the guest left in the image back into share_dir, replacing older files."""
    img, dump = _disk_image(share_dir), share_dir.rstrip("/") + ".dump"
    shutil.rmtree(dump, ignore_errors=True)
    os.makedirs(dump)
    _run(["debugfs", "-R", f"rdump / {dump}", img])
    for name in os.listdir(dump):
        if name in ("lost+found", "console.log"):
            continue
        dst = os.path.join(share_dir, name)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            os.unlink(dst)
        os.rename(os.path.join(dump, name), dst)
    shutil.rmtree(dump, ignore_errors=True)
    os.unlink(img)


class _ConsoleWatch:
    """Reports the console's progress lines (STEP_PREFIXES) as they appear, with host seconds."""

    def __init__(self, path, progress, t0):
        self.path, self.progress, self.t0, self.pos, self.partial = path, progress, t0, 0, b""

    def poll(self):
        if not self.progress or not os.path.exists(self.path):
            return
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        self.pos += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            i = max(line.find(p) for p in STEP_PREFIXES)
            if i >= 0:
                self.progress(time.monotonic() - self.t0, line[i:])


def _log_progress(secs, line):
    log(f"[{secs:6.1f} s] {line}")


def boot(kernel, initramfs, share_dir, scenario, timeout_s=300, mem_mib=1024, cpus=2,
         cmdline_extra="", icount=False, progress=None):
    """Boots the guest, runs `scenario` (shell text) with share_dir mounted at /host.

    icount: deterministic guest time (-icount shift=3,sleep=on, one vCPU, lpj=4000000) for cost
    measurements. progress: None, True (log to stderr) or a callable(host seconds, line) given
    each console line starting with PTESCOPE-VM: (booted, scenario exit) or PTESCOPE-STEP: (the
    scenario's own `echo "PTESCOPE-STEP: ..."` lines), as they appear.
    Returns (exit status of the scenario, seconds the VM ran). Raises VmFailed with the console
    and scenario log when the guest does not report an exit status (crash, hang past timeout_s).
    """
    os.makedirs(share_dir, exist_ok=True)
    for f in ("exit-status", "scenario.log", "console.log"):
        try:
            os.unlink(os.path.join(share_dir, f))
        except FileNotFoundError:
            pass
    with open(os.path.join(share_dir, "scenario.sh"), "w") as f:
        f.write(scenario)
    cmd = qemu_command(kernel, initramfs, share_dir, mem_mib, cpus, cmdline_extra, icount)
    if kernel.share_mode() == "disk":
        _disk_fill(share_dir)
    t0 = time.monotonic()
    watch = _ConsoleWatch(os.path.join(share_dir, "console.log"),
                          _log_progress if progress is True else progress, t0)
    with tempfile.TemporaryFile(mode="w+") as qlog:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog,
                                stderr=subprocess.STDOUT, text=True)
        while proc.poll() is None and time.monotonic() - t0 < timeout_s:
            watch.poll()
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        timed_out = proc.poll() is None
        if timed_out:
            proc.kill()
            proc.wait()
        watch.poll()
        qlog.seek(0)
        qout = qlog.read()
    elapsed = time.monotonic() - t0
    if kernel.share_mode() == "disk":
        try:
            _disk_read(share_dir)
        except (OSError, subprocess.CalledProcessError) as e:
            qout += f"\nreading the share image back failed: {getattr(e, 'stderr', e)}"
    if timed_out:
        raise VmFailed(f"VM timed out after {timeout_s} s\n" + guest_report(share_dir, qout))
    status_file = os.path.join(share_dir, "exit-status")
    if not os.path.exists(status_file):
        raise VmFailed(f"VM exited (qemu status {proc.returncode}) without a scenario status\n"
                       + guest_report(share_dir, qout))
    with open(status_file) as f:
        status = int(f.read().strip() or "255")
    return status, elapsed


def guest_report(share_dir, qemu_output="", lines=120):
    """The tail of the guest console and scenario log, for failure messages."""
    parts = []
    if qemu_output.strip():
        parts.append("--- qemu output ---\n" + qemu_output.strip())
    for name in ("console.log", "scenario.log"):
        p = os.path.join(share_dir, name)
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                tail = f.readlines()[-lines:]
            parts.append(f"--- guest {name} (last {lines} lines) ---\n" + "".join(tail))
    return "\n".join(parts)


def read_ground_truth(path):
    """The GT lines (JSON objects) a workload printed into a log file."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            i = line.find("GT {")
            if i >= 0:
                try:
                    out.append(json.loads(line[i + 3:]))
                except json.JSONDecodeError:
                    pass
    return out
