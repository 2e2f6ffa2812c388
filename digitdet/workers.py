"""Run a function over many items in worker processes, with a progress bar, and never leave a worker behind.

A builder's workers write into a folder that is being built. Were they to outlive the run (its process killed, or
interrupted), they would go on writing for minutes into a folder that is then removed or stale. So:
  - each worker watches its parent and exits the moment the parent is gone (kill -9 included);
  - on any error in the parent (Ctrl-C and SIGTERM included, see digitdet.cli) the workers are killed before the
    error goes on, so nothing is written after the caller has cleaned up;
  - workers never see Ctrl-C, which the terminal sends to every process of the run: the parent alone reports it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context

from tqdm import tqdm


PARENT_POLL_SECONDS = 0.5


def run(function: Callable, items: Iterable, workers: int, initializer: Callable | None = None, initargs=(),
        chunksize: int = 1, progress: dict | None = None, count: Callable[[object], int] | None = None) -> list:
    """[function(item) for item in items], in order.

    Args:
        function, items: a module-level function and picklable items (they cross to the worker processes).
        workers: processes to run in; 1 or fewer runs everything in this process (and `initializer` is not called:
            the caller has set up what the function needs).
        initializer, initargs: called once in each worker process before its first item.
        chunksize: items sent to a worker at a time.
        progress: tqdm's arguments (desc, unit, total, disable, ...) for a bar; None: no bar.
        count: how far one result advances the bar (default: 1 per item).
    """
    items = list(items)
    with tqdm(**{"total": len(items), **(progress or {"disable": True})}) as bar:
        def advance(results: list) -> list:
            bar.update(sum(count(result) for result in results) if count else len(results))
            return results

        if workers <= 1:
            return [result for item in items for result in advance([function(item)])]
        executor = None
        try:
            # spawn, not fork: the caller may already hold torch's thread pools, which do not survive a fork. The
            # workers start as the items are submitted, while Ctrl-C is blocked here: they inherit the blocked
            # signal and never see it, and a Ctrl-C pressed meanwhile waits for this process, not lost.
            with blocking(signal.SIGINT):
                executor = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=start_worker,
                                               initargs=(os.getpid(), initializer, initargs))
                futures = [executor.submit(run_chunk, function, items[start:start + chunksize])
                           for start in range(0, len(items), chunksize)]
            results = [result for future in futures for result in advance(future.result())]
        except BaseException:
            if executor is not None:
                # Killed, not waited for. Futures are not cancelled: the executor then marks them all failed
                # (Python 3.11 raises in its own thread when it finds a cancelled one among them)
                for process in list(executor._processes.values()):  # no public way to stop work
                    process.kill()
                executor.shutdown(wait=True)
            raise
        executor.shutdown()
        return results


@contextmanager
def blocking(signum: int):
    """Signal `signum` held back from this thread while the block runs (and from the processes it starts), then
    delivered if it came."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_chunk(function: Callable, chunk: list) -> list:
    return [function(item) for item in chunk]


def start_worker(parent: int, initializer: Callable | None, initargs) -> None:
    """In each worker: watch the parent, then the caller's own initializer."""
    threading.Thread(target=exit_with_parent, args=(parent,), daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def exit_with_parent(parent: int) -> None:
    """Exit this process once `parent` is gone: an orphan is adopted by another process, so its parent id changes."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)
