"""docs/img/scale.svg from bench/results-scale.json (issue 28): how memory and connect time grow with accounts.

    .venv/bin/python -m bench.scale_plot [bench/results-scale.json] [docs/img/scale.svg]

Two panels against linked accounts (log scale): RSS of the whole stack and of the worker shards, beside the
6 GiB goal; seconds from a cold start and from a kill -9 of one shard to every account connected (p50, p99 per
account), beside the 60 s goal. matplotlib (the test extra) draws it without a display (Agg).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results-scale.json"
PLOT = REPO / "docs" / "img" / "scale.svg"


def _series(sizes: list[dict], *path: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in sizes:
        value = row
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            xs.append(row["accounts"])
            ys.append(float(value))
    return xs, ys


def plot(results: dict, out: Path = PLOT) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results["sizes"], key=lambda r: r["accounts"])
    fig, (mem, conn) = plt.subplots(1, 2, figsize=(10, 4))
    for path, label in ((("footprint", "rss_mb", "total"), "whole stack"),
                        (("footprint", "rss_mb", "workers"), "worker shards"),
                        (("footprint", "rss_mb", "gateway"), "gateway"),
                        (("footprint", "rss_mb", "emulator"), "emulator")):
        xs, ys = _series(sizes, *path)
        mem.plot(xs, [y / 1024 for y in ys], marker="o", label=label)
    mem.axhline(6, color="red", linestyle="--", label="goal: 6 GiB in all")
    mem.set(xscale="log", xlabel="linked accounts", ylabel="RSS (GiB)", title="Memory")
    mem.legend(fontsize=8)
    for path, label in ((("cold_start", "per_account_s", "p50"), "cold start, p50"),
                        (("cold_start", "per_account_s", "p99"), "cold start, p99"),
                        (("shard_kill", "per_account_s", "p50"), "kill -9 of a shard, p50"),
                        (("shard_kill", "per_account_s", "p99"), "kill -9 of a shard, p99")):
        xs, ys = _series(sizes, *path)
        conn.plot(xs, ys, marker="o", label=label)
    conn.axhline(60, color="red", linestyle="--", label="goal: all within 60 s")
    conn.set(xscale="log", xlabel="linked accounts", ylabel="seconds to connected", title="Connect time")
    conn.legend(fontsize=8)
    ticks = [row["accounts"] for row in sizes]
    for ax in (mem, conn):
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
        ax.minorticks_off()
    fig.suptitle(f"wa-gateway, sandbox stack, {results.get('machine', {}).get('cpus', '?')} cores "
                 f"({results.get('started_at', '')[:10]})", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    # No date in the SVG's metadata and a fixed hash salt: the same figures draw the same file.
    matplotlib.rcParams["svg.hashsalt"] = "wa-gateway"
    fig.savefig(out, format="svg", metadata={"Date": None})
    plt.close(fig)
    return out


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else PLOT
    print(f"wrote {plot(json.loads(source.read_text()), out)}")


if __name__ == "__main__":
    main()
