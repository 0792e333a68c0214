"""The bulk worker process: imports run there, niced, and what it raises reaches the service intact."""

import asyncio
import os
import pickle

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
