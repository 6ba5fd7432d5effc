"""The load generator: an asyncio HTTP/1.1 client with a fixed number of keep-alive connections.

Why this and not wrk: it needs nothing outside PyPI (CI installs nothing from Debian), it records
every request's latency exactly (p50/p99 from all samples, not from histograms), and it runs in
its own process on the second core. Its own CPU use is measured and reported with every point, so
a client-bound measurement shows up as such instead of passing for the server's limit.
"""

import asyncio
import time
from dataclasses import dataclass


@dataclass
class Point:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: list
    client_cpu: float  # share of one core the client used while measuring

    @property
    def rps(self):
        return self.requests / self.seconds

    def percentile(self, q):
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def measure(port, target, concurrency, seconds, warmup=0.2):
    """Keep ``concurrency`` requests in flight for warmup + seconds; count only after warmup.

    Connections stop sending at the end of the window but wait for their last answer, so the
    server is idle again before the next point starts."""
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    latencies, errors = [], [0]

    async def connection():
        reader = writer = None
        while loop.time() < stop_at:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                sent = loop.time()
                writer.write(request)
                status = await asyncio.wait_for(_read_response(reader), 30)
                done = loop.time()
                # Every response completed inside the window counts, whenever it was sent:
                # a request queued behind a blocked loop still finishes (late) in the window.
                if measure_from <= done <= stop_at:
                    if status == 200:
                        latencies.append(done - sent)
                    else:
                        errors[0] += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                if loop.time() >= measure_from:
                    errors[0] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    cpu0 = time.process_time()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    cpu = (time.process_time() - cpu0) / (loop.time() - start)
    return Point(concurrency, len(latencies), errors[0], seconds, latencies, cpu)
