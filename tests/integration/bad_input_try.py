"""bad_input_try.py CODE: runs CODE (Python statements) and prints what the
system calls in it answered: OK, or the errno name (EINVAL, ...) of the
first OSError. Used by bad_input.sh, so each case's errno is read from the
syscall itself, not parsed out of a tool's message.

CODE sees os, mmap, errno and the helpers below; the paths come from the
environment: MNT (the mount), S (MNT/sessions), A (MNT/assets), T (the
test's temporary directory).
"""
import ctypes
import errno
import hashlib
import mmap
import os
import sys

MNT = os.environ.get("MNT", "")
S = os.environ.get("S", "")
A = os.environ.get("A", "")
T = os.environ.get("T", "")

def write(path, data=b"x", off=0, flags=0):
    """open(O_WRONLY|O_CREAT|flags), pwrite(data, off), close; returns
    what pwrite returned."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        return os.pwrite(fd, data, off)
    finally:
        os.close(fd)


def finish(session, manifest):
    """Writes MANIFEST into sessions/SESSION/.finish as `>` does; the
    commit's result is what close(2) returns."""
    if isinstance(manifest, str):
        manifest = manifest.encode("utf-8", "surrogateescape")
    fd = os.open(f"{S}/{session}/.finish", os.O_WRONLY | os.O_TRUNC)
    try:
        view = memoryview(manifest)
        while view:
            view = view[os.write(fd, view[: 1 << 20]):]
    except OSError:
        os.close(fd)
        raise
    os.close(fd)


# Session m's files (bad_input.sh makes them) and their manifest.
M_FILES = {"a": b"alpha\n", "b": b"bravo\n", "sub/c": b"charlie\n"}
H = {p: hashlib.sha256(data).hexdigest() for p, data in M_FILES.items()}


def line(path, digest=None, sep="  "):
    return f"{digest or H.get(path, H['a'])}{sep}{path}\n"


def good():
    return "".join(line(p) for p in M_FILES)


def must(cond, what="a precondition"):
    """Not an OSError: a failed must() fails the case loudly."""
    if not cond:
        raise AssertionError(what)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fallocate(path, length):
    """fallocate(2) itself: glibc's posix_fallocate would fall back to
    writing zeros."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    fd = os.open(path, os.O_WRONLY)
    try:
        if libc.fallocate(fd, 0, 0, length) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), path)
    finally:
        os.close(fd)


def main():
    try:
        exec(sys.argv[1], globals())
    except OSError as e:
        # Linux's EOPNOTSUPP and ENOTSUP are one number; Python names it
        # ENOTSUP, docs/semantics.md (and strerrorname_np) EOPNOTSUPP.
        name = "EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode.get(e.errno, str(e.errno))
        print(name)
        print(f"{e}", file=sys.stderr)
        return
    print("OK")


main()
