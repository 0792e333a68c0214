"""The bulk worker process: imports run there, niced, and what it raises reaches the service intact."""

import asyncio
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from citypair_shared import bulk
from citypair_shared.spreadsheet import UnreadableText
from citypair_shared.strict_json import BadJson
from citypair_shared.upload import BadFile, TooManyRows
from citypair_shared.xlsx import BadWorkbook


@pytest.mark.parametrize(
    "error",
    [
        TooManyRows(50_000),
        BadJson([{"loc": ("3", "name"), "msg": "duplicate key", "type": "value_error"}]),
        BadFile("x", code="header_repeats_column", column="name"),
        BadFile("the file is not UTF-8", code="file_not_utf8"),
        BadWorkbook("the sheet 'cities' cannot be read (KeyError)", code="sheet_unreadable", sheet="cities"),
        UnreadableText("not text", code="file_not_text"),
    ],
)
def test_a_refused_file_survives_the_trip_back_from_the_worker(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error) and vars(back) == vars(error)


def test_work_runs_in_another_process_below_the_service_priority():
    async def run():
        try:
            return await bulk.in_worker(os.getpid), await bulk.in_worker(os.nice, 0)
        finally:
            bulk.shutdown()

    pid, niceness = asyncio.run(run())
    assert pid != os.getpid()
    assert niceness >= os.nice(0) + bulk.NICENESS


def test_an_error_in_the_worker_is_raised_in_the_service():
    async def run():
        try:
            await bulk.in_worker(int, "not a number")
        finally:
            bulk.shutdown()

    with pytest.raises(ValueError):
        asyncio.run(run())


def test_a_worker_that_dies_is_replaced_for_the_next_import():
    from concurrent.futures.process import BrokenProcessPool

    async def run():
        try:
            with pytest.raises(BrokenProcessPool):
                await bulk.in_worker(os._exit, 1)
            return await bulk.in_worker(os.getpid)
        finally:
            bulk.shutdown()

    assert asyncio.run(run()) != os.getpid()


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_worker_ends_when_its_service_is_killed():
    """SIGKILL gives a service no chance to stop its worker: the worker notices and ends by itself."""
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE_WITH_A_WORKER], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent
    )
    try:
        worker = int(service.stdout.readline())
        assert not _gone(worker)
    finally:
        service.kill()
        service.wait()
    deadline = time.monotonic() + 10 * bulk.PARENT_CHECK_SECONDS
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(worker), f"the worker {worker} outlived its service"


SERVICE_WITH_A_WORKER = """
import asyncio, os, time
from citypair_shared import bulk
print(asyncio.run(bulk.in_worker(os.getpid)), flush=True)
time.sleep(60)
"""
