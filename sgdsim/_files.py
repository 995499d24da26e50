"""File-writing helpers shared by the modules that save results."""

from __future__ import annotations

import os


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (0o644 under 022).

    ``tempfile.mkstemp`` creates files 0600; a result written through it and moved into place
    with ``os.replace`` would keep that private mode. Call ``os.fchmod(fd, default_file_mode())``
    on the temporary file so saved results get the normal mode.
    """
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux reports it (``os.umask`` can
    only be read by setting it, which races with files other threads create meanwhile)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)  # the brief window errs on the private side
    os.umask(mask)
    return mask
