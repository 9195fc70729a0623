"""How every event handler runs: `user_errors` turns failures into messages for users (and hands
memory back afterwards), `heavy` runs full-resolution work on the colorization threads at a
lower CPU priority; HEAVY_GROUP is the queue group those events share.

Imports gradio (gr.Error).
"""
from __future__ import annotations

import contextvars
import functools
import html
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import gradio as gr

from .. import memory
from ..budget import BudgetError
from ..errors import ColorizerError
from ..settings import settings

log = logging.getLogger("colorizer.app")

HEAVY_GROUP = "colorize"  # the queue group of every event that does full-resolution work
HEAVY_NICE = 10  # CPU priority of colorization work, below the server's (the survey's votes)
_heavy_pool: ThreadPoolExecutor | None = None
_heavy_lock = threading.Lock()


def hide_server_paths(message: str) -> str:
    """A message without the server's folders: the weights folder reads `weights`, the
    repository's folder `.` (users need the file's name, not where the server keeps it)."""
    from ..registry import PACKAGE_DIR, weights_dir
    wd = weights_dir()
    for folder, shown in ((wd.resolve(), "weights"), (wd, "weights"), (PACKAGE_DIR.parent, ".")):
        message = message.replace(str(folder), shown)
    return message


def user_errors(fn):
    """Turn every failure of an event handler into a gr.Error with a message for users."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except BudgetError as exc:  # says what to lower: a warning-like refusal, no traceback
            raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from exc
        except (ColorizerError, ValueError) as exc:  # ImageError, ModelNotFoundError, WeightsError
            # the page shows messages as HTML, and they can hold a user's file name
            raise gr.Error(html.escape(hide_server_paths(str(exc)), quote=False), print_exception=False) from exc
        except MemoryError as exc:
            raise gr.Error("the server ran out of memory for this photo: try a smaller one") from exc
        except Exception as exc:  # a bug: logged with its traceback, the user gets one line
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"something went wrong on the server ({type(exc).__name__}); it was "
                           "logged. Other photos still work.") from exc
        finally:  # what a large job allocated goes back to the system (colorizer/memory.py)
            memory.release()
    return wrapper


def _lower_this_thread() -> None:
    """Lower the calling thread's CPU priority (on Linux a thread has its own nice value, and the
    threads it starts, such as torch's and the PNG writer's, inherit it). Lowering needs no
    privilege; elsewhere this does nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HEAVY_NICE)
    except (AttributeError, OSError):
        pass


def heavy(fn):
    """Run a handler's full-resolution work on the colorization threads: COLORIZER_CONCURRENCY
    of them (the queue group HEAVY_GROUP already lets no more in at once), at nice HEAVY_NICE,
    so that a vote (which runs on Gradio's own threads at the server's priority) gets the CPU
    first. The handler's context (Gradio's progress bar) goes along."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _heavy_pool
        with _heavy_lock:
            if _heavy_pool is None:
                _heavy_pool = ThreadPoolExecutor(max_workers=settings().concurrency + 1,
                                                 thread_name_prefix="colorize",
                                                 initializer=_lower_this_thread)
        ctx = contextvars.copy_context()
        return _heavy_pool.submit(ctx.run, fn, *args, **kwargs).result()
    return wrapper
