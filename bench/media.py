"""Media throughput: 1 MiB images out and in through a paired sandbox stack, against a bare Baileys client moving
the same images through the same emulator and its media host (bench/bare-baileys-media.mjs), in the same run.
Run with ``.venv/bin/python -m bench.media [--size-mb 1] [--n 20]``.

- OUT: ``POST /send`` (a multipart form, the file part streamed to the media store) at concurrency 1 and 4,
  each caller waiting for ``sent`` (WhatsApp's server ack: the worker has uploaded the file to the media host
  and relayed the message), from the first request to the last ``sent``; bare Baileys: ``sendMessage`` with
  the image buffer (no thumbnail, as the worker) until its server ack, with the same number of lanes. Every
  image is then checked at the contact (its sha256 decrypted), untimed.
- IN: emulator contacts send the images (1 or 4 posting at once) to the gateway's account, from the first
  post to the last ``media.stored`` event (the worker downloaded, verified and stored the file, the gateway
  recorded it); to the bare client's account, to the last ``downloadMediaMessage`` done.

The figures are sends/s and MB/s (MiB: 2**20 bytes) and the ratios gateway / bare; nothing is asserted.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.e2e import cpu_ms_per_message, cpu_seconds
from tests.helpers.sandbox import pair
from tests.helpers.stack import Stack, http, wait_for

REPO = Path(__file__).resolve().parent.parent
BARE = REPO / "bench" / "bare-baileys-media.mjs"
MIB = 2**20
GATEWAY_PHONE = "+15550009000"
# The governor off (the pipeline is measured, not the pacing meant for the real WhatsApp); POST /send waits for
# the ack long enough for any upload here; the emulator keeps every blob of the run (its bound evicts the oldest).
ENV = {"WA_SEND_BURST": "100000", "WA_SEND_RATE_PER_MINUTE": "1000000", "WA_SEND_JITTER": "0",
       "WA_SEND_WAIT": "60", "WA_EMULATOR_MEDIA_MAX_BYTES": str(4096 * MIB)}
DEFAULT_RUNS = (1, 4)  # concurrency (OUT: callers; IN: contacts posting)


def jpeg(size: int) -> bytes:
    """``size`` bytes the gateway takes as a JPEG (its type is sniffed from the first bytes): a JFIF header,
    random (incompressible) data, the end-of-image marker. Nothing here decodes it."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return head + os.urandom(size - len(head) - 2) + b"\xff\xd9"


def multipart(fields: dict[str, str], filename: str, mimetype: str, data: bytes) -> tuple[bytes, str]:
    """A form with the file part last: (body, Content-Type)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: {mimetype}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Bare:
    """bench/bare-baileys-media.mjs as a child: its 'READY' / 'BENCH {...}' lines, then stdin closed for 'CPU'."""

    def __init__(self, stack: Stack, *args: str):
        ca_file = stack.emu("GET", "/media").json()["ca_file"]
        env = {**os.environ, "NODE_EXTRA_CA_CERTS": ca_file}
        self.proc = subprocess.Popen(["node", str(BARE), args[0], stack.emulator, *args[1:]], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def line(self, prefix: str) -> str:
        skipped = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # the script gives up by itself after 120 s
            if line.startswith(prefix):
                return line[len(prefix):].strip()
            skipped.append(line)
        raise RuntimeError(f"bare-baileys-media.mjs exited {self.proc.wait(5)} without {prefix.strip()}: "
                           f"{''.join(skipped)[-2000:]}")

    def result(self) -> dict:
        return json.loads(self.line("BENCH "))

    def finish(self) -> float | None:
        """Closes stdin: the script reports its CPU ms and ends."""
        cpu = None
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            cpu = json.loads(self.line("CPU "))["cpu_ms"]
        except (RuntimeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return cpu


def at_contact(stack: Stack, contact: str, shas: set[str], timeout: float = 60) -> int:
    """How many of the images (by sha256) the contact decrypted, waiting up to ``timeout`` for all."""
    def seen() -> set[str]:
        entries = stack.emu("GET", f"/contacts/{contact}/messages").json()
        return {m["media"]["sha256"] for m in entries if m.get("media")} & shas
    try:
        wait_for(lambda: seen() >= shas, timeout, f"{len(shas)} images at {contact}", interval=0.2)
    except AssertionError:
        pass
    return len(seen())


def rates(n: int, nbytes: int, seconds: float) -> dict:
    return {"n": n, "seconds": round(seconds, 3), "per_s": round(n / seconds, 2),
            "mb_per_s": round(nbytes / MIB / seconds, 2)}


def gateway_out(stack: Stack, contact: str, images: list[bytes], concurrency: int, tag: str) -> dict:
    statuses: dict[str, int] = {}

    def send(i: int) -> None:
        fields = {"phone_number": contact, "kind": "image", "caption": f"{tag} {i}"}
        body, ctype = multipart(fields, f"{i}.jpg", "image/jpeg", images[i])
        res = http("POST", stack.base + "/send", raw=body, headers=stack.auth({"Content-Type": ctype}), timeout=120)
        status = res.json().get("status") if res.status in (200, 202) else str(res.status)
        if status == "queued":  # not acked within WA_SEND_WAIT: wait for it here
            mid = res.json()["id"]
            status = wait_for(lambda: (s := stack.get(f"/messages/{mid}").json()["status"]) != "queued" and s,
                              120, f"message {mid} sent")
        statuses[status] = statuses.get(status, 0) + 1

    stack.post("/send", {"phone_number": contact, "message": f"{tag} warm-up"})
    start = time.time()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, range(len(images))))
    result = rates(len(images), sum(map(len, images)), time.time() - start)
    shas = {hashlib.sha256(b).hexdigest() for b in images}
    return {**result, "statuses": statuses, "at_contact": at_contact(stack, contact, shas)}


def bare_out(stack: Stack, account: str, contact: str, folder: Path, images: list[bytes], concurrency: int,
             tag: str) -> dict:
    bare = Bare(stack, "send", account, contact, str(folder), str(concurrency), tag)
    try:
        got = bare.result()
        result = rates(got["sent"], got["bytes"], got["send_end"] - got["send_start"])
        shas = {hashlib.sha256(b).hexdigest() for b in images}
        result |= {"errors": got["errors"], "at_contact": at_contact(stack, contact, shas)}
    finally:
        result_cpu = bare.finish()
    return {**result, "bare_cpu_ms": result_cpu}


def post_images(stack: Stack, contacts: list[str], to: str, images: list[bytes], tag: str) -> tuple[float, float]:
    """The contacts send the images to ``to`` (one poster per contact); returns when the first post began and
    when the last one was answered (the emulator's contacts encrypt and upload each file: a floor of IN)."""
    payloads = [base64.b64encode(b).decode() for b in images]
    for contact in contacts:  # warm-up: each contact's Signal session with the account, not timed
        stack.emu("POST", f"/contacts/{contact}/messages", {"to": to, "text": f"{tag} warm-up"})
    time.sleep(0.5)

    def post(i: int) -> None:
        media = {"kind": "image", "base64": payloads[i], "mimetype": "image/jpeg", "caption": f"{tag} {i}"}
        res = stack.emu("POST", f"/contacts/{contacts[i % len(contacts)]}/messages", {"to": to, "media": media})
        if res.status != 200:
            raise RuntimeError(f"the contact's post: {res.status} {res.raw[:300]!r}")

    start = time.time()
    with ThreadPoolExecutor(len(contacts)) as pool:
        list(pool.map(post, range(len(images))))
    return start, time.time()


def gateway_in(stack: Stack, contacts: list[str], images: list[bytes], tag: str) -> dict:
    after = max((e["seq"] for e in stack.events()), default=0)
    start, posted = post_images(stack, contacts, GATEWAY_PHONE, images, tag)

    def stored() -> list[dict]:
        return [e for e in stack.events(after) if e["type"] in ("media.stored", "media.failed")
                and str(e.get("text") or "").startswith(tag)]
    try:
        wait_for(lambda: len(stored()) >= len(images), 120, f"{len(images)} media.stored", interval=0.05)
    except AssertionError:
        pass
    end = time.time()
    done = stored()
    ok = [e for e in done if e["type"] == "media.stored"]
    return {**rates(len(ok), sum(e["media"]["size"] for e in ok), end - start), "failed": len(done) - len(ok),
            "post_seconds": round(posted - start, 3)}


def bare_in(stack: Stack, account: str, contacts: list[str], images: list[bytes], tag: str) -> dict:
    bare = Bare(stack, "receive", account, str(len(images)), tag)
    try:
        bare.line("READY")
        start, posted = post_images(stack, contacts, account, images, tag)
        got = bare.result()
        result = {**rates(got["received"], got["bytes"], got["last_done"] - start), "errors": got["errors"],
                  "post_seconds": round(posted - start, 3)}
    finally:
        cpu = bare.finish()
    return {**result, "bare_cpu_ms": cpu}


def measure(runs=DEFAULT_RUNS, size: int = MIB, n: int = 20) -> dict:
    """{"out": {c: {"gateway", "bare", "ratio"}}, "in": {...}, "size_bytes", "n"}; ratio = gateway / bare sends/s."""
    images = [jpeg(size) for _ in range(n)]
    result: dict = {"size_bytes": size, "n": n, "out": {}, "in": {}}
    with tempfile.TemporaryDirectory(prefix="wa-bench-media-") as tmp, Stack(ENV, sandbox=True) as stack:
        folder = Path(tmp)
        for i, image in enumerate(images):
            (folder / f"{i:05d}.jpg").write_bytes(image)
        pair(stack, GATEWAY_PHONE)
        for k, c in enumerate(runs):
            bare = cpu(stack, n, bare_out, stack, f"+155500091{k}0", f"+155500092{k}0", folder, images, c,
                       f"bare-out-c{c}")
            gw = cpu(stack, n, gateway_out, stack, f"+155500093{k}0", images, c, f"gw-out-c{c}")
            result["out"][c] = {"gateway": gw, "bare": bare, "ratio": round(gw["per_s"] / bare["per_s"], 3)}
        for k, c in enumerate(runs):
            contacts = [f"+155500096{k}{j}" for j in range(c)]
            bare = cpu(stack, n, bare_in, stack, f"+155500094{k}0", [f"+155500095{k}{j}" for j in range(c)], images,
                       f"bare-in-c{c}")
            gw = cpu(stack, n, gateway_in, stack, contacts, images, f"gw-in-c{c}")
            result["in"][c] = {"gateway": gw, "bare": bare, "ratio": round(gw["per_s"] / bare["per_s"], 3)}
    return result


def cpu(stack: Stack, n: int, run, *args) -> dict:
    """``run(*args)`` with the CPU ms per image of each program of the stack (and of the bare client) added."""
    before = cpu_seconds(stack)
    result = run(*args)
    used = cpu_ms_per_message(before, cpu_seconds(stack), n)
    if result.get("bare_cpu_ms") is not None:
        used["bare"] = round(result["bare_cpu_ms"] / n, 2)
    return {**result, "cpu_ms_per_image": used}


def print_table(result: dict) -> None:
    mb = result["size_bytes"] / MIB
    print(f"media: {result['n']} images of {mb:g} MiB per row (sandbox stack, governor off); ratio = gateway / bare")
    print(f"{'direction':>9} {'conc.':>5} {'bare/s':>7} {'bare MB/s':>9} {'gw/s':>6} {'gw MB/s':>7} {'ratio':>6}"
          "  checks")
    for direction in ("out", "in"):
        for c, row in result[direction].items():
            gw, bare = row["gateway"], row["bare"]
            checks = (f"at contact gw {gw['at_contact']}/{gw['n']}, bare {bare['at_contact']}"
                      if direction == "out" else f"failed gw {gw['failed']}, bare errors {bare['errors']}; posting "
                      f"took gw {gw['post_seconds']:.2f} s, bare {bare['post_seconds']:.2f} s of {gw['seconds']:.2f}"
                      f" / {bare['seconds']:.2f}")
            print(f"{direction:>9} {c:>5} {bare['per_s']:>7.2f} {bare['mb_per_s']:>9.2f} {gw['per_s']:>6.2f} "
                  f"{gw['mb_per_s']:>7.2f} {row['ratio']:>6.2f}  {checks}")
    print("CPU ms per image (user+system), by process:")
    for direction in ("out", "in"):
        for c, row in result[direction].items():
            for label in ("bare", "gateway"):
                used = row[label]["cpu_ms_per_image"]
                print(f"  {direction:<3} c={c:<2} {label:<7} " + "  ".join(f"{k.split(':')[0]} {v:.1f}"
                                                                        for k, v in used.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1.0, help="image size in MiB (default 1)")
    parser.add_argument("--n", type=int, default=20, help="images per row (default 20)")
    args = parser.parse_args()
    print_table(measure(size=int(args.size_mb * MIB), n=args.n))


if __name__ == "__main__":
    main()
