"""Fairness under a send load spread over many accounts (issue 28, for bench/scale.py).

Each of up to 100 sampled accounts sends to its own emulator contact, 10 sends a second in all by default
(``POST /send`` with the default wait, so each latency is accept -> dispatch -> worker -> WhatsApp's ack ->
``sent``), for ``seconds``; once alone, then again while one more account floods: ``flood_callers`` callers of
its own each send to its contact, wait for ``sent`` and send again for the whole window, so that account always
has a full dispatch batch waiting. The fairness ratio is the others' p99 with the flood over their p99 without
(goal <= 2). The stack runs without the send governor (bench/e2e.py's UNPACED), or the flood would be paced to
30 a minute and load nothing. Prints nothing, asserts nothing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import aiohttp

from bench.scale_probes import quantiles
from tests.helpers import many_accounts
from tests.helpers.many_accounts import contact, name
from tests.helpers.stack import Stack

TIMEOUT = aiohttp.ClientTimeout(total=120)


async def _send(session: aiohttp.ClientSession, stack: Stack, n: int, text: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with session.post(f"{stack.base}/accounts/{name(n)}/send",
                            json={"phone_number": contact(n), "message": text}) as res:
        await res.read()
        return (time.perf_counter() - started) * 1000, res.status


async def _steady(session, stack: Stack, n: int, period: float, until: float, out: list, statuses: list) -> None:
    """One account: a send every ``period`` s (the first at a random offset, so that the accounts interleave)."""
    await asyncio.sleep(random.uniform(0, period))
    k = 0
    while time.monotonic() < until:
        started = time.monotonic()
        ms, status = await _send(session, stack, n, f"scale {n} {k}")
        k += 1
        (out if status == 200 else statuses).append(ms if status == 200 else status)
        await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))


async def _flood(session, stack: Stack, n: int, until: float, counter: list) -> None:
    k = 0
    while time.monotonic() < until:
        _, status = await _send(session, stack, n, f"flood {k}")
        k += 1
        counter.append(status)


async def _phase(stack: Stack, sampled: list[int], flooder: int | None, seconds: float, period: float,
                 flood_callers: int) -> dict:
    headers = {"X-API-Key": stack.api_key or ""}
    async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT,
                                     connector=aiohttp.TCPConnector(limit=0)) as session:
        until = time.monotonic() + seconds
        latencies: list[float] = []
        others: list[int] = []
        flooded: list[int] = []
        tasks = [_steady(session, stack, n, period, until, latencies, others) for n in sampled]
        if flooder is not None:
            tasks += [_flood(session, stack, flooder, until, flooded) for _ in range(flood_callers)]
        started = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    return {"latency_ms": quantiles(latencies), "sent_per_s": len(latencies) / elapsed,
            "other_answers": dict(Counter(others)),
            "flood_sends": len(flooded), "flood_answers": dict(Counter(flooded)),
            "flood_per_s": len(flooded) / elapsed if flooder is not None else None, "seconds": elapsed}


async def _warm(stack: Stack, numbers: list[int]) -> None:
    """One send from each account first: its first message to a contact sets up their Signal session."""
    async with aiohttp.ClientSession(headers={"X-API-Key": stack.api_key or ""}, timeout=TIMEOUT) as session:
        gate = asyncio.Semaphore(16)

        async def one(n: int) -> None:
            async with gate:
                await _send(session, stack, n, f"warm {n}")
        await asyncio.gather(*(one(n) for n in numbers))


def fairness(stack: Stack, numbers: list[int], sample: int = 100, seconds: float = 30, rate: float = 10.0,
             flood_callers: int = 32) -> dict:
    """Send latency of ``sample`` accounts (not the flooder) without and with one account flooding; the ratio.
    ``rate``: their sends per second in all (each account one every ``len(sampled) / rate`` s): a modest load,
    well under what the machine sends (bench/e2e.py), so that the flood, not the load, is what is measured."""
    flooder, rest = numbers[0], numbers[1:]
    sampled = random.Random(28).sample(rest, min(sample, len(rest)))
    period = len(sampled) / rate
    many_accounts.add_contacts(stack, [flooder, *sampled])
    asyncio.run(_warm(stack, [flooder, *sampled]))
    alone = asyncio.run(_phase(stack, sampled, None, seconds, period, flood_callers))
    flood = asyncio.run(_phase(stack, sampled, flooder, seconds, period, flood_callers))
    a, f = alone["latency_ms"]["p99"], flood["latency_ms"]["p99"]
    return {"accounts_sending": len(sampled), "period_s": period, "offered_per_s": rate, "window_s": seconds,
            "flooder": name(flooder),
            "flood_callers": flood_callers, "without_flood": alone, "with_flood": flood,
            "fairness_ratio": (f / a) if a and f else None}
