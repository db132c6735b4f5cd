"""Memory while a large document moves: the resident set (RSS) of the gateway and of the worker, sampled every
20 ms with psutil, while a document is sent by a streamed multipart upload (the Python client's ``send_media``
from a path, until the message is ``sent``: stored, uploaded by the worker to the emulator's media host, acked)
and while an emulator contact sends one that the gateway has the worker download (until ``media.stored``).
Run with ``.venv/bin/python -m bench.media_memory [--sizes-mb 20,100]``.

Each size and way runs on a fresh paired sandbox stack (so that one run's grown heap is not the next one's
baseline); the growth is the peak RSS less the median of one idle second just before. Both ways stream (the
gateway's intake and media store, the worker's upload through Baileys' encryptedStream and its chunked download),
so the growth should not follow the size: the report gives growth(largest) / growth(smallest) per program and says
``scales`` when the largest grew by more than a quarter of the extra bytes (a growth under 1 MiB counts as 1 MiB in
the ratio: it is noise). Nothing is asserted.

The bounds are raised for it to 128 MiB: WA_MEDIA_MAX_DOCUMENT_BYTES (100 MiB by default) and the emulator's
WA_EMULATOR_MEDIA_MAX_UPLOAD_BYTES (64 MiB by default).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.media import ENV, MIB, at_contact
from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, http, wait_for
from wa_gateway_client import Client

PHONE = "+15550009800"
OUT_CONTACT = "+15550009811"
IN_CONTACT = "+15550009822"
BOUND = 128 * MIB
MEMORY_ENV = {**ENV, "WA_MEDIA_MAX_DOCUMENT_BYTES": str(BOUND), "WA_EMULATOR_MEDIA_MAX_UPLOAD_BYTES": str(BOUND)}
PROGRAMS = {"gateway": "gateway", "worker": "worker:worker-0"}
DEFAULT_SIZES = (20, 100)  # MiB


class Sampler:
    """RSS of some processes every ``interval`` s on a thread, from start() to stop(): the peak of each."""

    def __init__(self, pids: dict[str, int], interval: float = 0.02):
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.interval = interval
        self.samples: dict[str, list[int]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, proc in self.procs.items():
                try:
                    self.samples[name].append(proc.memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def peaks(self) -> dict[str, int]:
        return {name: max(values) for name, values in self.samples.items() if values}


def idle(pids: dict[str, int], seconds: float = 1.0) -> dict[str, int]:
    """The median RSS of each process over ``seconds`` of doing nothing."""
    with Sampler(pids, 0.05) as sampler:
        time.sleep(seconds)
    return {name: int(statistics.median(values)) for name, values in sampler.samples.items()}


def document(path: Path, size: int) -> str:
    """A ``size``-byte PDF-looking file (random, incompressible) written in 1 MiB pieces; its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        head = b"%PDF-1.7\n"
        out.write(head)
        digest.update(head)
        left = size - len(head)
        while left:
            chunk = os.urandom(min(MIB, left))
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def growth(baseline: dict[str, int], sampler: Sampler, seconds: float) -> dict:
    peaks = sampler.peaks()
    return {"seconds": round(seconds, 2), **{name: {"idle_mb": round(baseline[name] / MIB, 1),
                                                    "peak_mb": round(peaks[name] / MIB, 1),
                                                    "growth_mb": round((peaks[name] - baseline[name]) / MIB, 1)}
                                             for name in baseline}}


def send_out(stack: Stack, pids: dict[str, int], path: Path, sha: str) -> dict:
    """The document by a streamed multipart upload, sampled until the message is ``sent``."""
    baseline = idle(pids)
    with Client(stack.base, api_key=stack.api_key, timeout=300) as client, Sampler(pids) as sampler:
        start = time.monotonic()
        sent = client.send_media(OUT_CONTACT, "document", path=path, mimetype="application/pdf", wait=0)
        status = wait_for(lambda: (s := stack.get(f"/messages/{sent.id}").json()["status"]) not in
                          ("queued", "sending") and s, 300, "the document sent", interval=0.1)
        seconds = time.monotonic() - start
    return {**growth(baseline, sampler, seconds), "status": status,
            "at_contact": at_contact(stack, OUT_CONTACT, {sha}, timeout=120)}


def receive_in(stack: Stack, pids: dict[str, int], path: Path, sha: str) -> dict:
    """A contact sends the document; sampled from its post until the gateway's ``media.stored``."""
    http("POST", f"{stack.emulator}/contacts/{IN_CONTACT}/messages", {"to": PHONE, "text": "warm-up"})
    body = {"to": PHONE, "media": {"kind": "document", "base64": base64.b64encode(path.read_bytes()).decode(),
                                   "mimetype": "application/pdf", "filename": "big.pdf", "caption": "memory-in"}}
    after = max((e["seq"] for e in stack.events()), default=0)
    baseline = idle(pids)
    with Sampler(pids) as sampler:
        start = time.monotonic()
        res = http("POST", f"{stack.emulator}/contacts/{IN_CONTACT}/messages", body, timeout=300)
        if res.status != 200:
            raise RuntimeError(f"the contact's post: {res.status} {res.raw[:300]!r}")
        del body
        event = wait_for(lambda: next((e for e in stack.events(after) if e["type"] in ("media.stored", "media.failed")
                                       and e.get("text") == "memory-in"), None), 300, "media.stored", interval=0.1)
        seconds = time.monotonic() - start
    return {**growth(baseline, sampler, seconds), "state": event["media"]["state"],
            "sha256_matches": event["media"]["sha256"] == sha}


def one_run(way: str, path: Path, sha: str) -> dict:
    """One way for one document on a fresh paired stack."""
    with Stack(MEMORY_ENV, sandbox=True) as stack:
        pair(stack, PHONE)
        pids = {name: stack.process_info(program)["pid"] for name, program in PROGRAMS.items()}
        return (send_out if way == "out" else receive_in)(stack, pids, path, sha)


def verdicts(result: dict) -> dict:
    """Per way and program: growth of the largest / of the smallest size, and whether it follows the size."""
    sizes = sorted(result["runs"], key=float)
    small, large = result["runs"][sizes[0]], result["runs"][sizes[-1]]
    extra_mb = float(sizes[-1]) - float(sizes[0])
    out: dict = {}
    for way in ("out", "in"):
        for name in PROGRAMS:
            g_small, g_large = small[way][name]["growth_mb"], large[way][name]["growth_mb"]
            # a growth under 1 MiB is noise: counted as 1 MiB in the ratio
            out[f"{way}_{name}"] = {"ratio": round(max(g_large, 1) / max(g_small, 1), 2),
                                    "scales": g_large - g_small > extra_mb / 4}
    return out


def measure(sizes_mb=DEFAULT_SIZES) -> dict:
    """{"runs": {size_mb: {"out"|"in": {"gateway"|"worker": {idle_mb, peak_mb, growth_mb}, "seconds"}}},
    "verdicts": {"out_gateway": {"ratio", "scales"}, ...}}"""
    result: dict = {"runs": {}}
    with tempfile.TemporaryDirectory(prefix="wa-bench-memory-") as tmp:
        for size in sizes_mb:
            path = Path(tmp) / f"doc-{size:g}.pdf"
            sha = document(path, int(size * MIB))
            result["runs"][f"{size:g}"] = {way: one_run(way, path, sha) for way in ("out", "in")}
            path.unlink()
    if len(sizes_mb) > 1:
        result["verdicts"] = verdicts(result)
    return result


def print_table(result: dict) -> None:
    print("media memory: RSS growth (peak - idle median) while one document moves (MiB; a fresh stack per row)")
    print(f"{'size MiB':>8} {'way':>4} {'seconds':>7} {'gateway idle':>12} {'peak':>6} {'growth':>6}"
          f" {'worker idle':>11} {'peak':>6} {'growth':>6}  check")
    for size, run in result["runs"].items():
        for way in ("out", "in"):
            row = run[way]
            gw, wk = row["gateway"], row["worker"]
            check = f"status {row['status']}, at contact {row['at_contact']}" if way == "out" else \
                f"{row['state']}, sha256 {'ok' if row['sha256_matches'] else 'DIFFERS'}"
            print(f"{size:>8} {way:>4} {row['seconds']:>7.1f} {gw['idle_mb']:>12.1f} {gw['peak_mb']:>6.1f} "
                  f"{gw['growth_mb']:>6.1f} {wk['idle_mb']:>11.1f} {wk['peak_mb']:>6.1f} {wk['growth_mb']:>6.1f}"
                  f"  {check}")
    for key, verdict in result.get("verdicts", {}).items():
        print(f"  {key}: growth ratio largest/smallest {verdict['ratio']}, "
              f"{'SCALES with the size' if verdict['scales'] else 'flat'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default=",".join(map(str, DEFAULT_SIZES)),
                        help="document sizes in MiB, comma-separated (default 20,100; e.g. 2,10 for a quick run)")
    args = parser.parse_args()
    print_table(measure(tuple(float(s) for s in args.sizes_mb.split(","))))


if __name__ == "__main__":
    main()
