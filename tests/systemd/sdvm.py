"""A Debian 12 guest with systemd as PID 1, for the systemd tier (tests/systemd).

Fed by the vm harness (tests/vm/vmlib.py: the kernel, its 9p modules, the boot with a hard
timeout and the share at /host) and by mmdebstrap, which builds a minimal bookworm root from the
Debian archive the machine's apt sources name (with the libraries the ptescope package depends on,
systemd, dbus, curl, sqlite3). That root is packed once as a newc cpio and cached in the VM cache
(<cache>/systemd-root/); each boot appends a small second cpio (the kernel unpacks both into its
rootfs, so no disk driver is needed): a pre-init that loads the 9p modules, mounts the share and
execs systemd, the unit that runs the scenario and powers off, and the test's files.

The scenario is shell text run as a service (stdout on the console and in scenario.log); it leaves
/host/exit-status like vmlib's busybox init does, so vmlib.boot() runs it unchanged.
"""

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vm"))
import vmlib  # noqa: E402

SUITE = "bookworm"
# the package's run-time dependencies, systemd as init and what the scenario uses
PACKAGES = ["systemd", "systemd-sysv", "dbus", "kmod", "procps", "curl", "sqlite3",
            "libjansson4", "libmicrohttpd12", "libsqlite3-0", "libsystemd0", "libtracecmd1",
            "libtraceevent1", "libtracefs1", "libcapstone4"]
ROOT_VERSION = "2"  # bump when the way the root is made changes: a new cache key
MEM_MIB = 2048

PREINIT = r"""#!/bin/sh
# ptescope test guest: load the share's modules, mount it at /host, hand over to systemd
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/ptescope-vm/modules-order); do
	insmod /etc/ptescope-vm/modules/$m || echo "init: insmod $m failed"
done
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /host ||
	{ echo "PTESCOPE-VM: cannot mount the share"; echo o > /proc/sysrq-trigger; }
exec /lib/systemd/systemd
"""

RUNNER = r"""#!/bin/sh
echo "PTESCOPE-VM: booted $(uname -r) under $(systemctl --version | head -1), $(nproc) cpus, uptime $(cut -d' ' -f1 /proc/uptime)s"
cd /host
{ sh /host/scenario.sh; echo $? > /tmp/scenario-status; } 2>&1 | tee /tmp/scenario.log
cp /tmp/scenario.log /host/scenario.log
cp /tmp/scenario-status /host/exit-status
echo "PTESCOPE-VM: scenario exit $(cat /tmp/scenario-status)"
sync
systemctl poweroff --force --force
"""

RUNNER_UNIT = """[Unit]
Description=ptescope test scenario (tests/systemd)
After=basic.target

[Service]
Type=simple
ExecStart=/etc/ptescope-vm/run
StandardOutput=journal+console
StandardError=inherit
"""

# units a test guest does not want: getty on the console (no udev: it would wait 90 s for
# its device), apt's timers
MASKED = ["serial-getty@ttyS0.service", "getty.target", "apt-daily.timer",
          "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer"]


def _cpio_entry(f, name, mode, data, ino, uid=0, gid=0, mtime=0, rdev=(0, 0)):
    nlink = 2 if stat.S_ISDIR(mode) else 1
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join(f"{v:08X}" for v in (
        ino, mode, uid, gid, nlink, mtime, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0))
    f.write(hdr.encode() + name_b)
    f.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    f.write(data)
    f.write(b"\0" * ((4 - len(data) % 4) % 4))


def tar_to_cpio(tar_path, out):
    """Writes a newc cpio (no trailer: an overlay archive follows) of a root filesystem tarball,
    keeping modes, owners, symlinks and device nodes; hard links become copies."""
    kinds = {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK,
             tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK,
             tarfile.FIFOTYPE: stat.S_IFIFO}
    ino = 1
    with tarfile.open(tar_path) as tf, open(out + ".tmp", "wb") as f:
        for m in tf:
            name = os.path.normpath(m.name)
            if name == ".":
                continue
            ino += 1
            if m.type in kinds:
                data = m.linkname.encode() if m.issym() else b""
                kind = kinds[m.type]
            else:
                data = tf.extractfile(m).read()
                kind = stat.S_IFREG
            _cpio_entry(f, name, kind | m.mode, data, ino, m.uid, m.gid, int(m.mtime),
                        (m.devmajor, m.devminor) if m.ischr() or m.isblk() else (0, 0))
    os.replace(out + ".tmp", out)


def _mmdebstrap(tar_path):
    if not shutil.which("mmdebstrap"):
        raise vmlib.VmUnavailable("mmdebstrap not found (scripts/install-deps vm)")
    main, security, keyring = vmlib._machine_archives()
    sources = [f"deb [signed-by={keyring}] {main} {SUITE} main",
               f"deb [signed-by={keyring}] {main} {SUITE}-updates main",
               f"deb [signed-by={keyring}] {security} {SUITE}-security main"]
    exclude = ["/usr/share/man/*", "/usr/share/locale/*", "/usr/share/doc/*", "/usr/share/info/*"]
    cmd = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES)]
    cmd += [f"--dpkgopt=path-exclude={p}" for p in exclude]
    cmd += ["--dpkgopt=path-include=/usr/share/doc/*/copyright", SUITE, tar_path] + sources
    vmlib.log(f"mmdebstrap: a {SUITE} root with systemd into {tar_path} (a few minutes, once)")
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    except subprocess.CalledProcessError as e:
        raise vmlib.VmUnavailable(f"mmdebstrap failed: {e.stdout[-2000:]}")


def base_cpio(cache_dir):
    """The cached cpio of the Debian root, built with mmdebstrap the first time."""
    key = hashlib.sha256(" ".join([SUITE, ROOT_VERSION] + PACKAGES).encode()).hexdigest()[:12]
    d = os.path.join(cache_dir, "systemd-root")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, f"{SUITE}-{key}.cpio")
    with vmlib._locked(out + ".lock"):
        if not os.path.exists(out):
            tar = out[:-len(".cpio")] + ".tar"
            _mmdebstrap(tar)
            tar_to_cpio(tar, out)
            os.unlink(tar)
    return out


def overlay(kernel, files, out):
    """The per-boot cpio: pre-init, modules, the runner unit, masks, and `files`
    ((guest path, host path or bytes, mode) triples)."""
    img = vmlib.Initramfs()
    img.add_file("init", PREINIT.encode(), 0o755)
    order = []
    for name, src in kernel.guest_modules():
        img.add_file(f"etc/ptescope-vm/modules/{name}.ko", vmlib._module_bytes(src), 0o644)
        order.append(name + ".ko")
    img.add_file("etc/ptescope-vm/modules-order", ("\n".join(order) + "\n").encode())
    img.add_file("etc/ptescope-vm/run", RUNNER.encode(), 0o755)
    sd = "etc/systemd/system/"
    img.add_file(sd + "ptescope-vm.service", RUNNER_UNIT.encode())
    img.add_symlink(sd + "multi-user.target.wants/ptescope-vm.service",
                    "/etc/systemd/system/ptescope-vm.service")
    for u in MASKED:
        img.add_symlink(sd + u, "/dev/null")
    img.add_file("etc/hostname", b"ptescope-vm\n")
    for guest, src, mode in files:
        img.add_file(guest, src, mode)
    img.write(out)
    return out


def build_initrd(cache_dir, kernel, files, out):
    """base root + overlay, concatenated: the kernel unpacks one archive after the other."""
    if kernel.share_mode() != "9p":
        raise vmlib.VmUnavailable(f"kernel {kernel.release} has no 9p (the systemd guest "
                                  "mounts the share over 9p)")
    base = base_cpio(cache_dir)
    ov = overlay(kernel, files, out + ".overlay")
    with open(out + ".tmp", "wb") as f:
        for part in (base, ov):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
    os.replace(out + ".tmp", out)
    os.unlink(ov)
    return out
