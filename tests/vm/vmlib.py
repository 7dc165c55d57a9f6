"""Real-kernel VM harness: Debian's kernel under qemu TCG with a busybox initramfs.

Fed by the host's Debian packages (qemu-system-x86, busybox-static, trace-cmd, redis-server when
present) and by Debian's linux-image-6.1.0-*-amd64, fetched with `apt-get download` into a cache
directory outside the source tree. Builds an initramfs (busybox, the 9p/virtio modules, the binaries
under test with their shared libraries, our workload programs), boots it with a hard timeout, runs a
scenario shell script inside the guest with a host directory shared over virtio-9p at /host, and
returns what the scenario left there. Feeds tests/vm/record-fixtures and the `vm` ctests.

Sized for one boot per test (about 7 s of boot under TCG on 2 host cores) and scenario outputs of a
few MB to a few hundred MB; the guest has 1 GiB of RAM and 2 vCPUs unless told otherwise.
"""

import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time

SKIP = 77  # ctest SKIP_RETURN_CODE
HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_PKG_RE = re.compile(r"^linux-image-6\.1\.0-(\d+)-amd64$")
# Loaded in this order; dependencies are checked against each module's own "depends=" line.
GUEST_MODULES = [
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "fs/netfs/netfs.ko",
    "fs/fscache/fscache.ko",
    "net/9p/9pnet.ko",
    "net/9p/9pnet_virtio.ko",
    "fs/9p/9p.ko",
]
TRACEEVENT_PLUGINS = "/usr/lib/x86_64-linux-gnu/traceevent/plugins"
WORKLOADS = ["forker", "forkstorm", "hog", "costload"]


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


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def newest_kernel_package():
    """Name of the newest linux-image-6.1.0-N-amd64 that apt-cache offers, or None."""
    try:
        out = _run(["apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-[0-9]+-amd64$"]).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    best = None
    for line in out.splitlines():
        name = line.split(" ", 1)[0]
        m = KERNEL_PKG_RE.match(name)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), name)
    return best[1] if best else None


class Kernel:
    """An unpacked kernel package: vmlinuz, modules, release string, package name/version."""

    def __init__(self, root, deb):
        self.root = root
        self.deb = deb
        vmlinuz = sorted(glob.glob(os.path.join(root, "boot", "vmlinuz-*")))
        if not vmlinuz:
            raise VmUnavailable(f"no boot/vmlinuz-* in {root}")
        self.vmlinuz = vmlinuz[-1]
        self.release = os.path.basename(self.vmlinuz)[len("vmlinuz-"):]
        self.moddir = os.path.join(root, "lib", "modules", self.release, "kernel")
        base = os.path.basename(deb)[:-len(".deb")].split("_")
        self.package, self.version = base[0], base[1] if len(base) > 1 else "?"

    def describe(self):
        return {"package": self.package, "package_version": self.version,
                "release": self.release}


def get_kernel(cache_dir, fetch=True):
    """Returns the newest kernel package, downloading and unpacking it into cache_dir if needed.

    PTESCOPE_VM_KERNEL_DEB names a .deb to use instead. Raises VmUnavailable when none can be had.
    """
    os.makedirs(cache_dir, exist_ok=True)
    deb = os.environ.get("PTESCOPE_VM_KERNEL_DEB")
    if not deb:
        pkg = newest_kernel_package()
        cached = sorted(glob.glob(os.path.join(cache_dir, "linux-image-6.1.0-*-amd64_*.deb")))
        wanted = [d for d in cached if pkg and os.path.basename(d).startswith(pkg + "_")]
        if wanted:
            deb = wanted[-1]
        elif pkg and fetch:
            log(f"downloading {pkg} into {cache_dir}")
            try:
                _run(["apt-get", "download", pkg], cwd=cache_dir)
            except (OSError, subprocess.CalledProcessError) as e:
                err = getattr(e, "stderr", "") or str(e)
                if not cached:
                    raise VmUnavailable(f"apt-get download {pkg} failed: {err.strip()}")
                log(f"apt-get download {pkg} failed, using cached {cached[-1]}")
            got = sorted(glob.glob(os.path.join(cache_dir, pkg + "_*.deb")))
            deb = got[-1] if got else cached[-1]
        elif cached:
            deb = cached[-1]
        else:
            raise VmUnavailable("no linux-image-6.1.0-*-amd64 offered by apt-cache and none cached")
    root = os.path.join(cache_dir, os.path.basename(deb)[:-len(".deb")])
    if not os.path.exists(os.path.join(root, ".unpacked")):
        shutil.rmtree(root, ignore_errors=True)
        try:
            _run(["dpkg-deb", "-x", deb, root])
        except (OSError, subprocess.CalledProcessError) as e:
            raise VmUnavailable(f"cannot unpack {deb}: {getattr(e, 'stderr', e)}")
        open(os.path.join(root, ".unpacked"), "w").close()
    return Kernel(root, deb)


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
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /host; then
	echo "PTESCOPE-VM: cannot mount the 9p share"
	poweroff -f
fi
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
    loaded = set()
    for rel in GUEST_MODULES:
        src = os.path.join(kernel.moddir, rel)
        if not os.path.exists(src):
            raise VmUnavailable(f"kernel package lacks module {rel}")
        with open(src, "rb") as f:
            m = re.search(rb"depends=([\w,-]*)", f.read())
        deps = [d for d in (m.group(1).decode().split(",") if m else []) if d]
        missing = [d for d in deps if d not in loaded]
        if missing:
            raise VmUnavailable(f"module {rel} needs {missing} before it")
        loaded.add(os.path.basename(rel)[:-3].replace("-", "_"))
        img.add_file("lib/modules/" + os.path.basename(rel), src, 0o644)
        order.append(os.path.basename(rel))
    img.add_file("etc/modules-order", ("\n".join(order) + "\n").encode())
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


def boot(kernel, initramfs, share_dir, scenario, timeout_s=300, mem_mib=1024, cpus=2,
         cmdline_extra="", icount=False):
    """Boots the guest, runs `scenario` (shell text) with share_dir mounted at /host.

    icount=True makes guest time follow executed instructions (-icount shift=3: 8 ns each; idle
    time follows the host clock, sleep=on) and fixes the delay loop (lpj=), so timings inside the
    guest do not move with host load: for benchmarks (tests/bench/vm-cost).

    Returns (exit status of the scenario, seconds the VM ran). Raises VmFailed with the console
    and scenario log when the guest does not report an exit status (crash, hang past timeout_s).
    """
    qemu = find_qemu()
    os.makedirs(share_dir, exist_ok=True)
    for f in ("exit-status", "scenario.log", "console.log"):
        try:
            os.unlink(os.path.join(share_dir, f))
        except FileNotFoundError:
            pass
    with open(os.path.join(share_dir, "scenario.sh"), "w") as f:
        f.write(scenario)
    console = os.path.join(share_dir, "console.log")
    # Single-threaded TCG: with thread=multi the guest was seen locking up (soft lockup on CPU 0)
    # while trace-cmd switched tracers; single is also no slower on 2 host cores.
    tcg = "tcg,thread=" + os.environ.get("PTESCOPE_VM_TCG_THREAD", "single")
    icount_args = []
    if icount:  # icount needs single-threaded TCG
        tcg, icount_args = "tcg,thread=single", ["-icount", "shift=3,sleep=on"]
        cmdline_extra = "lpj=4000000 " + cmdline_extra
    cmd = [qemu, "-accel", tcg] + icount_args + ["-m", str(mem_mib), "-smp", str(cpus),
           "-kernel", kernel.vmlinuz, "-initrd", initramfs,
           "-append", "console=ttyS0 panic=-1 loglevel=4 rdinit=/init " + cmdline_extra,
           "-display", "none", "-monitor", "none", "-serial", "file:" + console,
           "-no-reboot", "-nic", "none",
           "-fsdev", f"local,id=host,path={share_dir},security_model=none",
           "-device", "virtio-9p-pci,fsdev=host,mount_tag=host"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        qout, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        qout, _ = proc.communicate()
        raise VmFailed(f"VM timed out after {timeout_s} s\n" + guest_report(share_dir, qout))
    elapsed = time.monotonic() - t0
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
