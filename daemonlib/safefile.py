"""Every file the daemons write goes through here: created without following links, with
a mode of our choosing, and atomically (CVE-2018-19044/19045/19046 were keepalived writing
its dumps in /tmp through planted links, world-readable).

The directory is opened once with O_DIRECTORY|O_NOFOLLOW and checked (ours or root's, not
writable by others unless sticky like /tmp); the data goes into a temporary file with an
unpredictable name made with O_CREAT|O_EXCL|O_NOFOLLOW in that directory, then is renamed
over the final name relative to the same directory descriptor. A symbolic link, a non-file
or a file owned by someone else at the final name is refused (`Refused`), never followed
nor replaced: someone is playing games there and the operator should know.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(OSError):
    """A path we will not write through; str() says why, naming the path."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.strerror = self.message = message

    def __str__(self) -> str:
        return self.message


def _owners() -> tuple[int, ...]:
    return (0, os.geteuid())


def open_dir(path: str, create: bool = False, mode: int = 0o755) -> int:
    """A descriptor of directory `path`, refused when it is a link (its last component),
    belongs to another user, or others may write in it without the sticky bit.
    `create`: make it (and its parents) with `mode` when missing."""
    if create:
        try:
            os.makedirs(path, mode=mode, exist_ok=True)
        except FileExistsError:
            pass  # a link or a file there: open() below says which
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as e:
        # a link as the last component: ELOOP, or ENOTDIR with O_DIRECTORY
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise Refused(f"{path} is a symbolic link; refusing to write through it") from None
        raise
    st = os.fstat(fd)
    why = ""
    if st.st_uid not in _owners():
        why = f"it is owned by uid {st.st_uid}"
    elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        why = "others may write in it (and it is not sticky)"
    if why:
        os.close(fd)
        raise Refused(f"directory {path}: {why}; refusing to write there")
    return fd


def check_target(dirfd: int, name: str, shown: str) -> None:
    """Refuse a final name that is a link, not a regular file, or someone else's."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise Refused(f"{shown} is a symbolic link; not followed, not replaced")
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{shown} is not a regular file; not replaced")
    if st.st_uid not in _owners():
        raise Refused(f"{shown} is owned by uid {st.st_uid}; not replaced")


class AtomicFile:
    """A file replaced atomically, written piece by piece (a big status need never be
    whole in memory): `write` as often as needed, then `commit` (renamed into place) or
    `abort` (the temporary removed, the old file untouched). Same refusals as
    write_atomic, raised at creation."""

    def __init__(self, path: str, mode: int = 0o600, create_dir: bool = False) -> None:
        self.mode = mode
        directory, self.name = os.path.split(os.path.abspath(path))
        self.dirfd = open_dir(directory, create=create_dir)
        try:
            check_target(self.dirfd, self.name, path)
            self.tmp = f".{self.name}.{os.urandom(8).hex()}"  # not `secrets`: hashlib at start
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                              | os.O_CLOEXEC, 0o600, dir_fd=self.dirfd)
        except BaseException:
            os.close(self.dirfd)
            raise

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def commit(self, keep_open: bool = False) -> int:
        """The file renamed into place; its descriptor if `keep_open` (else -1)."""
        try:
            os.fchmod(self.fd, self.mode)  # exactly `mode`, whatever the umask
            os.rename(self.tmp, self.name, src_dir_fd=self.dirfd, dst_dir_fd=self.dirfd)
        except BaseException:
            self.abort()
            raise
        os.close(self.dirfd)
        if keep_open:
            return self.fd
        os.close(self.fd)
        return -1

    def abort(self) -> None:
        os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.tmp, dir_fd=self.dirfd)
        os.close(self.dirfd)


def _replace(path: str, data: bytes, mode: int, create_dir: bool, keep_open: bool) -> int:
    f = AtomicFile(path, mode, create_dir)
    try:
        f.write(data)
    except BaseException:
        f.abort()
        raise
    return f.commit(keep_open)


def write_atomic(path: str, data: bytes | str, mode: int = 0o600,
                 create_dir: bool = False) -> str:
    """Replace `path` with `data` (readers see the old or the new file, never half);
    the new file has exactly `mode`. Raises Refused or OSError; returns `path`."""
    _replace(path, data.encode() if isinstance(data, str) else data, mode, create_dir, False)
    return path


def create(path: str, mode: int = 0o600) -> int:
    """A new empty file at `path` (replacing ours, as keepalived's log file), open for
    writing: same refusals as write_atomic."""
    return _replace(path, b"", mode, False, True)


def remove(path: str) -> None:
    """Remove a file we wrote (a pid file at exit): a link there is removed, never its
    target; a file someone else owns is left alone."""
    directory, name = os.path.split(os.path.abspath(path))
    with contextlib.suppress(OSError):
        dirfd = os.open(directory, _DIR_FLAGS)
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode) or st.st_uid in _owners():
                os.unlink(name, dir_fd=dirfd)
        finally:
            os.close(dirfd)


def make_fifo(path: str, mode: int, owner: tuple[int, int] | None) -> tuple[int, bool]:
    """Open the notify FIFO at `path` for writing without blocking and without following
    a link (keepalived's rule: made if missing, else an existing FIFO of ours or of the
    script's user is used); return (descriptor, made by us)."""
    made = False
    try:
        os.mkfifo(path, 0o600)
        made = True
    except FileExistsError:
        pass
    try:
        # O_RDWR: writes succeed (into the pipe) while no reader is attached, as keepalived
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Refused(f"{path} is a symbolic link; not used as the notify FIFO") from None
        raise
    st = os.fstat(fd)
    allowed = {*_owners(), *((owner[0],) if owner else ())}
    if not stat.S_ISFIFO(st.st_mode) or st.st_uid not in allowed:
        os.close(fd)
        what = "not a FIFO" if not stat.S_ISFIFO(st.st_mode) else f"owned by uid {st.st_uid}"
        raise Refused(f"{path} is {what}; not used as the notify FIFO")
    if made:  # on the descriptor: the name may have been swapped since mkfifo
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
    return fd, made
