"""The benchmark's own arithmetic: response parsing and the medians/spread over repeated runs."""

import asyncio

from bench.__main__ import summarize
from bench.load import _read_response


def parse(raw):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await _read_response(reader), await reader.read()

    return asyncio.run(go())


def test_reads_exactly_one_response_of_either_framing():
    fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokNEXT"
    chunked = b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nNEXT"
    assert parse(fixed) == (200, b"NEXT")
    assert parse(chunked) == (500, b"NEXT")


def test_summary_is_the_median_with_half_range_spread():
    def run(rps):
        point = {"server": "s", "kind": "k", "concurrency": 1, "rps": rps, "p50_ms": 1.0,
                 "p99_ms": 2.0, "client_cpu": 0.1, "errors": 0}  # fmt: skip
        return {"points": [point], "peak_rss_mb": {"s": 50.0}, "adaptation": {"x": 1.0}}

    [point] = summarize([run(90), run(100), run(110)])["points"]
    assert point["rps"] == 100
    assert point["rps_spread_pct"] == 10.0
