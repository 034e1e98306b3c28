"""The sandbox child's side: `harness_main` is shipped as source to `python -I -S -c` by
prefpipe.verify.sandbox, so it must use the standard library only and reference no module globals."""
from __future__ import annotations


def harness_main() -> None:
    """The child's side, shipped as source with ``-c`` (so it uses the stdlib only): confine the
    process, install the audit hook, run the candidate, then the tests, reporting each on the pipe.

    Long because it is sent as its own source, so it can call no module-level
    helper, and its helpers are closures over builtins bound before the candidate's first line
    runs (a candidate that rebinds `builtins.len` can't reach them)."""
    import builtins
    import json
    import os
    import resource
    import sys

    write, exit_now, realpath, fspath = os.write, os._exit, os.path.realpath, os.fspath
    compile_, exec_, eval_, repr_, type_, str_, all_ = compile, exec, eval, repr, type, str, all
    base_exception, memory_error = BaseException, MemoryError
    payload = json.loads(sys.stdin.buffer.read())
    os.close(0)
    tag, fd, tmp, limits, uid = (payload["nonce"].encode(), payload["fd"], payload["tmp"],
                                 payload["limits"], payload["uid"])
    tests = tuple((str_(kind), str_(source)) for kind, source in payload["tests"])  # immutable

    def report(kind: str, index: int = -1, info: str = "") -> None:
        text = info.replace("\n", " ").replace("\r", " ").encode("utf-8", "replace")[:3000]
        try:
            write(fd, b" ".join((tag, kind.encode(), b"%d" % index, text)) + b"\n")
        except OSError:
            exit_now(3)

    def describe(err: BaseException) -> str:
        try:
            return f"{type_(err).__name__}: {str_(err)[:300]}"
        except base_exception:
            return type_(err).__name__

    for name, value in (("RLIMIT_CORE", 0), ("RLIMIT_FSIZE", limits["max_file_bytes"]),
                        ("RLIMIT_NOFILE", limits["max_open_files"]), ("RLIMIT_CPU", limits["cpu_s"]),
                        ("RLIMIT_NPROC", limits["max_processes"]),
                        ("RLIMIT_AS", limits["memory_mb"] * 1024 * 1024)):
        resource.setrlimit(getattr(resource, name), (value, value))
    os.chdir(tmp)
    os.umask(0o077)
    if payload["unshare"]:  # CLONE_NEWNET, plus CLONE_NEWUSER when not root (bubblewrap did both)
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).unshare(0x40000000 if uid is not None else 0x50000000)
        except (OSError, AttributeError, ImportError):
            pass
    for name in [m for m in sys.modules if m.startswith(("ctypes", "_ctypes"))]:
        del sys.modules[name]  # a later `import ctypes` must dlopen again, which the hook refuses
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    own, own_proc = realpath(tmp), f"/proc/{os.getpid()}/"
    refused = {"os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
               "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
               "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "sys.addaudithook",
               "resource.setrlimit", "resource.prlimit"}
    path_args = {"os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.mkdir": (0,),
                 "os.symlink": (1,), "os.link": (0, 1), "os.chmod": (0,), "os.chown": (0,),
                 "os.truncate": (0,), "os.utime": (0,), "shutil.rmtree": (0,)}
    refused_modules = {"ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters", "_testcapi"}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    watched = refused | set(path_args) | {"open", "import", "object.__setattr__"}

    def inside(path: object) -> bool:
        if type_(path) is int:
            return True  # an already open descriptor
        resolved = realpath(fspath(path))
        resolved = resolved.decode("utf-8", "replace") if type_(resolved) is bytes else resolved
        return resolved == own or resolved.startswith(own + "/")

    def reason_for(event: str, args: tuple) -> str | None:
        if event in refused or event.startswith("ctypes."):
            return "not allowed in the sandbox"
        if event == "import":
            return "module not allowed" if args[0] in refused_modules else None
        if event == "object.__setattr__":
            return "rewriting code objects" if args[1] == "__code__" else None
        if event == "open":
            path = args[0]
            if type_(path) is not int:
                resolved = realpath(fspath(path))
                resolved = resolved.decode("utf-8", "replace") if type_(resolved) is bytes else resolved
                if resolved.startswith("/proc/") and (not resolved.startswith(own_proc)
                                                      or resolved.endswith("/mem")):
                    return "another process's /proc entry"
            writing = (args[2] or 0) & write_flags
            return "write outside its directory" if writing and not inside(path) else None
        return "outside its directory" if not all_(inside(args[i]) for i in path_args[event]) else None

    def hook(event: str, args: tuple) -> None:
        if event not in watched and not event.startswith("ctypes."):
            return
        try:
            reason = reason_for(event, args)
        except base_exception:
            reason = "unreadable arguments"
        if reason:
            report("blocked", -1, f"{event}: {reason}")
            raise PermissionError(f"sandbox: {event} refused ({reason})")

    if payload["audit"]:
        sys.addaudithook(hook)
    code = payload["code"]
    del payload
    namespace = {"__name__": "__candidate__", "__builtins__": builtins}
    builtin_names, saved_builtins = vars(builtins), dict(vars(builtins))

    def restore_builtins() -> None:  # a candidate that patched builtins.len must not fool the tests
        for name in [k for k in builtin_names if k not in saved_builtins]:
            del builtin_names[name]
        builtin_names.update(saved_builtins)
    try:
        program = compile_(code, "<candidate>", "exec")
    except (SyntaxError, ValueError, OverflowError, RecursionError, memory_error) as err:
        report("syntax_error", -1, describe(err))
        exit_now(0)
    try:
        exec_(program, namespace)
    except memory_error:
        report("memory", -1, "MemoryError at module level")
        exit_now(0)
    except base_exception as err:  # SystemExit included: exiting at import scores nothing
        report("crashed", -1, "module level " + describe(err))
        exit_now(0)
    report("ran")
    plain = (int, float, complex, str, bytes, bool, type_(None))

    def is_plain(x: object, depth: int = 0) -> bool:
        kind = type_(x)
        if any(kind is t for t in plain):
            return True
        if depth > 50:
            return False
        if kind is list or kind is tuple or kind is set or kind is frozenset:
            return all_(is_plain(v, depth + 1) for v in x)
        return kind is dict and all_(is_plain(k, depth + 1) and is_plain(v, depth + 1) for k, v in x.items())

    for index, (kind, source) in enumerate(tests):
        restore_builtins()
        try:
            if kind == "expr":
                value = eval_(compile_(source, f"<test {index}>", "eval"), namespace)
                text = repr_(value) if is_plain(value) else None
                if text is None or len(text) > 2500:
                    report("fail", index, "not plain data" if text is None else "value too large")
                else:
                    report("value", index, text)
            else:
                exec_(compile_(source, f"<test {index}>", "exec"), namespace)
                report("pass", index)
        except memory_error:
            report("memory", index, "MemoryError")
            report("fail", index, "MemoryError")
        except base_exception as err:
            report("fail", index, describe(err))
    report("done")
    exit_now(0)
