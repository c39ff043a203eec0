"""bench/harness.py's accounting of a server's processor time thread by thread (what
bench.api_profile --http prints): each thread's user and kernel time and its switches."""

import os
import threading
import time

from bench.harness import process_group_threads


def test_a_busy_thread_is_found_with_its_processor_time():
    stop = threading.Event()

    def spin() -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.3:
            pass
        stop.wait(10)

    thread = threading.Thread(target=spin)
    before = process_group_threads(os.getpgid(0))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            threads = process_group_threads(os.getpgid(0))
            spinner = threads.get(thread.native_id)
            if spinner is not None and spinner.user + spinner.system >= 0.2:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()

    assert spinner is not None
    # Python 3.11 leaves a thread the process' name in /proc (granian names its Rust threads).
    assert spinner.name == threads[os.getpid()].name
    assert not spinner.main
    assert spinner.process == os.getpid()
    assert spinner.user + spinner.system >= 0.2  # clock ticks: 10 ms apart
    assert thread.native_id not in before
    main = threads[os.getpid()]
    assert main.main
    assert (main - before[os.getpid()]).voluntary >= 0
    assert process_group_threads(2**22 + 7) == {}  # no such group
