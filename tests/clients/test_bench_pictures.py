"""keel-bench's pictures (issue 16 item 7): a real load against keel written as JSON, SVG and
PNG; the SVG carries every panel's axis names, units, tick labels and legend; --compare overlays
two result files; progress is one line per interval when stderr is not a terminal."""
import json
import os
import re
import struct
import subprocess

import pytest

from conftest import keel_bin

pytestmark = pytest.mark.skipif(bool(os.environ.get("KEEL_CLUSTER")), reason="one run is enough")


def bench_bin():
    return os.path.join(os.path.dirname(keel_bin()), "keel-bench")


def bench(keel, *args):
    p = subprocess.run([bench_bin(), "--endpoint", keel.endpoint, "--access-key", "AKIDCLIENTTEST",
                        "--secret-key", "client/secret+key", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def flat(svg):
    """The SVG with the white space around text elements' contents removed."""
    return re.sub(r"\s+<", "<", re.sub(r">\s+", ">", svg))


def png_size(path):
    head = open(path, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", head
    return struct.unpack(">II", head[16:24])


def test_a_run_draws_every_panel_with_axes_units_and_a_legend(keel, tmp_path):
    out = {k: str(tmp_path / f"run.{k}") for k in ("json", "svg", "png")}
    p = bench(keel, "--bucket", "pictures", "--workload", "mixed", "--size", "4KiB", "--objects", "50",
              "--concurrency", "4", "--duration", "2.5s", "--json", out["json"], "--svg", out["svg"], "--png", out["png"])
    # Not a terminal: one progress line per interval, none overwritten.
    progress = [l for l in p.stderr.splitlines() if "ops/s" in l]
    assert len(progress) >= 2 and "\r" not in p.stderr, p.stderr
    doc = json.load(open(out["json"]))
    by_op = doc["timeline_by_op"]
    assert set(by_op) == {"GET", "PUT"}, by_op.keys()
    # The first interval is there (it starts the line at 0 s).
    assert 0.5 < by_op["GET"][0]["t"] < 1.5 and by_op["GET"][0]["ops_per_sec"] > 0
    curve = doc["latency_curve"]["GET"]
    assert curve[0]["nines"] == 0 and curve[-1]["nines"] == 4
    assert all(a["ms"] <= b["ms"] for a, b in zip(curve, curve[1:]))
    svg = flat(open(out["svg"]).read())
    for text in ("Throughput", "operations per second", "Data rate", "MB/s", "time (s)",
                 "Latency by percentile", "latency (ms, log scale)", "percentile", "p90", "p99", "p99.9",
                 ">GET<", ">PUT<"):
        assert text in svg, text
    assert png_size(out["png"]) == (1000, 1050)


def test_compare_overlays_two_runs_with_their_labels(keel, tmp_path):
    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    bench(keel, "--bucket", "pictures-a", "--workload", "put", "--size", "4KiB", "--objects", "20",
          "--concurrency", "2", "--duration", "1.5s", "--json", a)
    bench(keel, "--bucket", "pictures-b", "--workload", "get", "--size", "16KiB", "--objects", "20",
          "--concurrency", "2", "--duration", "1.5s", "--json", b)
    svg = str(tmp_path / "both.svg")
    p = subprocess.run([bench_bin(), "--compare", f"{a},{b}", "--labels", "before,after", "--svg", svg],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    text = flat(open(svg).read())
    assert ">before PUT<" in text and ">after GET<" in text and "before vs after" in text
    # A file that is not a keel-bench result is refused with its name.
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    p = subprocess.run([bench_bin(), "--compare", str(bad), "--svg", svg], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "bad.json" in p.stderr


def test_every_operation_has_its_own_line_in_the_timeline(keel, tmp_path):
    # The range workload's operation has a timeline of its own, under the name its latency
    # curve has (it once fell into an "OTHER" line).
    out = str(tmp_path / "range.json")
    bench(keel, "--bucket", "pictures-range", "--workload", "range", "--size", "64KiB", "--range-size", "4KiB",
          "--objects", "20", "--concurrency", "2", "--duration", "1.5s", "--json", out)
    doc = json.load(open(out))
    assert set(doc["timeline_by_op"]) == set(doc["latency_curve"]) == {"GET-range"}, doc["timeline_by_op"].keys()
