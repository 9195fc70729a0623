"""Giving memory back to the system after large work (no gradio here; used by the web app).

A 40 MP colorization allocates a few hundred MB of arrays. When they are freed, glibc's malloc
keeps much of it in its arenas (the heap of each thread that ran a job), so the server's RSS
stays at its highest level. `release()` collects Python's garbage and asks glibc to return the
free pages of every arena (malloc_trim); it does so only once the RSS has grown by TRIM_STEP since
the last time, so small requests pay nothing. Where glibc is absent (macOS, musl) it only
collects garbage.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading

TRIM_STEP = 64 * 2**20  # bytes of RSS growth that trigger a trim

_lock = threading.Lock()
_level = 0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _load_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_trim = _load_trim()


def rss_bytes() -> int:
    """This process's resident memory now (Linux; 0 where /proc is absent)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def release(force: bool = False) -> bool:
    """Collect garbage and return free heap pages to the system if the RSS grew by TRIM_STEP
    since the last release (always with force=True). True if a trim ran."""
    global _level
    now = rss_bytes()
    if not force and now and now < _level + TRIM_STEP:
        return False
    with _lock:
        gc.collect()
        if _trim is not None:
            _trim(0)
        _level = rss_bytes()
    return _trim is not None
