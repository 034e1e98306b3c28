"""Layer 0 of the sandbox (see `prefpipe.verify.sandbox`): the bubblewrap command line that puts a
candidate's interpreter in namespaces of its own, with a read-only view of just what it needs.

``bwrap --unshare-all`` gives it user, pid, mount, network, IPC, UTS and cgroup namespaces: it sees
only its own processes in a fresh ``/proc``, has only a loopback that is down, and sees no host file
but the ones bound here: ``/usr`` (and ``/bin``, ``/lib*``, ``/sbin`` as the host has them: merged-usr
symlinks or read-only directories), the interpreter's prefix when it lives outside ``/usr``, and the
loader's cache from ``/etc``. Its only writable place is a private tmpfs at `SANDBOX_DIR` capped at
``--size`` bytes: the root, ``/dev`` (so ``/dev/shm`` too) and every bind are read-only. The host's
temp dir, ``/dev/shm``, ``/work``, ``/root`` and the store do not exist inside."""
from __future__ import annotations

import glob
import os
import shutil

SANDBOX_DIR = "/tmp"  # inside the sandbox: the private tmpfs, its cwd, HOME and TMPDIR
_TOP_LEVEL = ("/bin", "/sbin", *sorted(glob.glob("/lib*")))  # outside /usr on split-usr hosts
_LOADER_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf")


def bwrap_path() -> str | None:
    """The bwrap executable, or None when bubblewrap is not installed."""
    return shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin")


def bwrap_command(bwrap: str, interpreter: str, disk_bytes: int) -> list[str]:
    """The bwrap arguments that run `interpreter` (a real path, no symlink) confined; the
    interpreter's own arguments follow them."""
    command = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for path in _TOP_LEVEL:
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            command += ["--ro-bind", path, path]
    prefix = os.path.dirname(os.path.dirname(interpreter))  # <prefix>/bin/python3.X
    if prefix != "/" and not (prefix + "/").startswith("/usr/"):  # "/": its bin and lib are bound above
        command += ["--ro-bind", prefix, prefix]
    for path in _LOADER_FILES:
        command += ["--ro-bind-try", path, path]
    command += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
                "--size", str(disk_bytes), "--tmpfs", SANDBOX_DIR, "--remount-ro", "/",
                "--chdir", SANDBOX_DIR, interpreter]
    return command
