#!/usr/bin/env python3
"""Unit tests of the benches/run harness pieces that do not need servers: parsing `nats bench`
output, unit selection, wire-size arithmetic, server and cluster config files, the reading of
/routez interest and the rendered reports (JetStream's three-server tables, the cluster
figures and the clustered JetStream ones included). The smoke run
(`benches/run --smoke`) covers the process orchestration end to end.

Run: python3 benches/test_run.py
"""

import importlib.machinery
import importlib.util
import sys
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

sys.dont_write_bytecode = True
_path = Path(__file__).resolve().parent / "run"
_loader = importlib.machinery.SourceFileLoader("bench_run", str(_path))
_spec = importlib.util.spec_from_loader("bench_run", _loader)
run = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = run  # dataclasses look their module up while the file loads
_loader.exec_module(run)

PUB_OUT = """
NATS Core NATS publisher stats: 5,026,958 msgs/sec ~ 77 MiB/sec ~ min: 0.06us ~ avg: 0.12us
"""
SUB1_OUT = "\nNATS Core NATS subscriber stats: 508,387 msgs/sec ~ 496 MiB/sec\n"
SUB4_OUT = """
  [1] 581,998 msgs/sec ~ 8.9 MiB/sec (100,000 msgs)
  [2] 600,526 msgs/sec ~ 9.2 MiB/sec (100,000 msgs)

 NATS Core NATS subscriber aggregated stats: 2,191,722 msgs/sec ~ 33 MiB/sec
 message rates min 548,122 | avg 585,513 | max 611,407 | stddev 24,012 msgs
"""


def figure(key, ref, cho):
    f = run.FIGURE_BY_KEY[key]
    return {
        "key": key, "title": f.title, "unit": f.unit, "better": f.better,
        "reference": {"median": ref, "runs": [] if ref is None else [ref]},
        "chorus": {"median": cho, "runs": [] if cho is None else [cho]},
        "ratio": (cho / ref) if (ref and cho is not None) else None,
    }


def js_figure(key, ref, always, cho):
    f = figure(key, ref, cho)
    f["js"] = True
    f["reference_always"] = {"median": always, "runs": [] if always is None else [always]}
    f["ratio_always"] = (cho / always) if (always and cho is not None) else None
    return f


def report(figures):
    meta = {
        "rounds": 3, "date": "2026-01-01 00:00 UTC", "command": "benches/run", "nproc": "2",
        "cpu": "Test CPU <&>", "memory": "1 GiB", "kernel": "Linux", "duration_secs": 1.0,
        "server_flags": "-a 127.0.0.1", "versions": {"chorus": "x"}, "counts": {"conns": 10},
    }
    return {"meta": meta, "figures": figures, "raw_tcp": {}, "fractions_of_raw_tcp": [],
            "extras": {}, "failures": []}


class ParseBenchRate(unittest.TestCase):
    def test_publisher_and_single_subscriber(self):
        self.assertEqual(run.parse_bench_rate(PUB_OUT, "publisher"), 5_026_958)
        self.assertEqual(run.parse_bench_rate(SUB1_OUT, "subscriber"), 508_387)

    def test_aggregated_line_wins_over_per_client_lines(self):
        self.assertEqual(run.parse_bench_rate(SUB4_OUT, "subscriber"), 2_191_722)

    def test_colours_are_ignored(self):
        coloured = "\x1b[1mNATS Core NATS publisher stats:\x1b[0m 1,234 msgs/sec ~ 1 MiB/sec"
        self.assertEqual(run.parse_bench_rate(coloured, "publisher"), 1234)

    def test_missing_or_wrong_role_fails(self):
        with self.assertRaises(run.StepError):
            run.parse_bench_rate(PUB_OUT, "subscriber")
        with self.assertRaises(run.StepError):
            run.parse_bench_rate("nats: error: nats: no servers available", "publisher")


class Units(unittest.TestCase):
    def test_default_is_everything(self):
        units, raw = run.select_units(None)
        self.assertIn("conns", units)
        self.assertIn("queue-1k", units)
        self.assertEqual(raw, ["rawtcp-16b", "rawtcp-1k"])

    def test_groups_expand_and_keep_canonical_order(self):
        units, raw = run.select_units(["reqrep", "pubsub", "pubsub-16b"])
        self.assertEqual(units, ["pubsub-16b", "pubsub-1k", "reqrep"])
        self.assertEqual(raw, [])

    def test_consumer_group_runs_against_the_js_servers(self):
        units, _ = run.select_units(["jsc"])
        self.assertEqual(units, ["jsc-fetch", "jsc-fetch-noack", "jsc-ordered", "jsc-push",
                                 "jsc-workqueue"])
        for u in units:
            self.assertIn(u, run.FULL.js)
            self.assertIn(u, run.SMOKE.js)
            self.assertIs(run.turns_for(u), run.JSC_TURNS)
            self.assertTrue(run.FIGURE_BY_KEY[u].js)

    def test_js_group_and_default_run(self):
        units, raw = run.select_units(["js"])
        self.assertEqual(units, ["js-async-file-16b", "js-async-file-1k", "js-sync-file-1k",
                                 "js-async-mem-16b", "js-async-mem-1k", "kv"])
        self.assertEqual(raw, [])
        default, _ = run.select_units(None)
        self.assertTrue(set(units) <= set(default))
        for u in units:
            self.assertIn(u, run.FULL.js if u != "kv" else {"kv": 1})
            self.assertEqual(run.turns_for(u), run.JS_TURNS)
        self.assertEqual(run.turns_for("reqrep"), run.PLAIN_TURNS)

    def test_js_unit_parts(self):
        self.assertEqual(run.js_unit_parts("js-sync-file-1k"), ("sync", "file", 1024))
        self.assertEqual(run.js_unit_parts("js-async-mem-16b"), ("async", "memory", 16))
        for u in run.JS_PUB_UNITS:
            self.assertIn(u, run.FIGURE_BY_KEY)
            self.assertIn(u, run.SMOKE.js)

    def test_server_conf(self):
        plain = run.server_conf(1234)
        self.assertIn('listen: "127.0.0.1:1234"', plain)
        self.assertNotIn("jetstream", plain)
        default = run.server_conf(1, Path("/tmp/a b"), "default")
        self.assertIn('store_dir: "/tmp/a b"', default)
        self.assertNotIn("sync_interval", default)
        always = run.server_conf(1, Path("/tmp/x"), "always")
        # nats-server's parser needs a separator between the two entries.
        self.assertIn('store_dir: "/tmp/x"\n  sync_interval: always\n}', always)

    def test_unknown_name_exits(self):
        with self.assertRaises(SystemExit):
            run.select_units(["nope"])

    def test_wire_bytes(self):
        msg = len(b"MSG bench.pubsub-16b 1 16\r\n") + 16 + len(b"\r\n")
        self.assertEqual(run.wire_bytes("pubsub", 16, "bench.pubsub-16b"), msg)
        self.assertEqual(run.wire_bytes("fanout", 16, "bench.pubsub-16b"), msg)
        pub = len(b"PUB bench.pub-1k 1024\r\n") + 1024 + len(b"\r\n")
        self.assertEqual(run.wire_bytes("pub", 1024, "bench.pub-1k"), pub)


class Reports(unittest.TestCase):
    FIGS = [
        figure("pubsub-16b", 1_000_000.0, 1_500_000.0),
        figure("reqrep-p50", 40.0, 20.0),
        figure("conns-rss", 100.0, None),
    ]

    def test_svg_is_well_formed_with_a_bar_per_ratio_and_the_parity_line(self):
        svg = run.render_svg(report(self.FIGS))
        root = ET.fromstring(svg)
        ns = "{http://www.w3.org/2000/svg}"
        bars = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
        self.assertEqual(len(bars), 2)
        # Both measured figures favour chorus (faster; lower latency): green bars.
        self.assertEqual({b.get("fill") for b in bars}, {"#2e7d32"})
        texts = [t.text or "" for t in root.iter(ns + "text")]
        self.assertIn("1.0x = parity", texts)
        self.assertIn("1.50x", texts)
        self.assertIn("0.50x", texts)
        self.assertIn("failed", texts)

    def test_markdown_table_marks_direction_and_failures(self):
        md = run.render_markdown(report(self.FIGS))
        self.assertIn("| 1:1 pub/sub, 16 B | msgs/s | 1,000,000 | 1,500,000 | 1.50x | higher", md)
        self.assertIn("| request/reply latency p50 | µs | 40.0 | 20.0 | 0.50x | lower", md)
        self.assertIn("| 100.00 | FAILED | — |", md)
        self.assertIn("| nproc | 2 |", md)


class JetStreamReports(unittest.TestCase):
    def test_build_report_gives_both_ratios(self):
        res = run.Results(rounds=1)
        res.add("reference", {"kv-put-p50": 50.0, "js-sync-file-1k": 5000.0})
        res.add("reference-always", {"kv-put-p50": 400.0, "js-sync-file-1k": 500.0})
        res.add("chorus", {"kv-put-p50": 200.0, "js-sync-file-1k": 2500.0})
        meta = report([])["meta"]
        rep = run.build_report(res, meta, ["js-sync-file-1k", "kv"], [])
        by = {f["key"]: f for f in rep["figures"]}
        self.assertAlmostEqual(by["js-sync-file-1k"]["ratio"], 0.5)
        self.assertAlmostEqual(by["js-sync-file-1k"]["ratio_always"], 5.0)
        self.assertAlmostEqual(by["kv-put-p50"]["ratio"], 4.0)
        self.assertAlmostEqual(by["kv-put-p50"]["ratio_always"], 0.5)
        # The KV unit yields all four latency figures, failed ones included.
        self.assertEqual([k for k in by if k.startswith("kv-")],
                         ["kv-put-p50", "kv-put-p99", "kv-get-p50", "kv-get-p99"])
        self.assertIsNone(by["kv-get-p99"]["ratio_always"])

    def test_markdown_and_svg(self):
        figs = [js_figure("js-sync-file-1k", 5000.0, 500.0, 2500.0),
                js_figure("kv-put-p50", 50.0, 400.0, 200.0)]
        md = run.render_markdown(report(figs))
        self.assertIn("## JetStream", md)
        self.assertIn("| JetStream sync publish, file, 1 KiB | msgs/s | 5,000 | 500 | 2,500 | "
                      "0.50x | 5.00x | higher", md)
        self.assertIn("| KV put latency p50 | µs | 50.0 | 400.0 | 200.0 | 4.00x | 0.50x | lower", md)
        self.assertNotIn("| nats-server median |", md)  # no empty plain-figure table
        root = ET.fromstring(run.render_svg(report(figs)))
        ns = "{http://www.w3.org/2000/svg}"
        bars = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
        self.assertEqual(len(bars), 4)
        titles = sorted(b.find(ns + "title").text for b in bars)
        self.assertIn("KV put latency p50 vs nats sync always: 0.500x", titles)
        self.assertIn("JetStream sync publish, file, 1 KiB vs nats default: 0.500x", titles)


class Cluster(unittest.TestCase):
    def test_group_and_default_run(self):
        units, raw = run.select_units(["cluster"])
        self.assertEqual(units, ["cluster-pubsub-16b", "cluster-pubsub-1k", "cluster-queue-16b",
                                 "cluster-queue-1k", "cluster-interest"])
        self.assertEqual(raw, [])
        self.assertEqual(run.select_units(["cluster-queue"])[0],
                         ["cluster-queue-16b", "cluster-queue-1k"])
        default, _ = run.select_units(None)
        self.assertTrue(set(units) <= set(default))
        for u in units:
            self.assertEqual(run.turns_for(u), run.PLAIN_TURNS)
        for scale in (run.FULL, run.SMOKE):
            for size in run.SIZES:
                self.assertGreater(scale.cluster_pubsub[size], 0)
                self.assertGreater(scale.cluster_queue[size], 0)
        self.assertEqual(run.FULL.cluster_interest, 100_000)

    def test_cluster_conf(self):
        conf = run.cluster_conf(2, [7001, 7002, 7003])
        self.assertIn("server_name: n2\n", conf)
        self.assertIn(f"max_pending: {1 << 30}\n", conf)
        self.assertIn("  name: bench\n", conf)
        self.assertIn('  listen: "127.0.0.1:7002"\n', conf)
        self.assertIn('routes: ["nats-route://127.0.0.1:7001", "nats-route://127.0.0.1:7002", '
                      '"nats-route://127.0.0.1:7003"]', conf)
        self.assertIn(f"pool_size: {run.CLUSTER_POOL}\n", conf)
        self.assertTrue(conf.endswith("}\n"))

    def test_route_interest_reads_routez_subscription_lists(self):
        class Node:
            def monitor(self, path):
                assert path == "/routez?subs=1"
                return {"routes": [
                    {"remote_name": "n2", "subscriptions_list": ["a", "bench.x"]},
                    {"remote_name": "n2"},  # a pool connection without subscriptions
                    {"remote_name": "n3", "subscriptions_list": ["bench.xy"]},
                ]}
        self.assertEqual(run.route_interest(Node(), "bench.x"), {"n2"})
        self.assertEqual(run.route_interest(Node(), "nothing"), set())

        class Down:
            def monitor(self, path):
                return None
        self.assertEqual(run.route_interest(Down(), "bench.x"), set())

    def test_report_rows_and_formats(self):
        res = run.Results(rounds=1)
        res.add("reference", {"cluster-interest-ms": 812.25, "cluster-interest-mem": 1311.4,
                              "cluster-pubsub-16b": 400_000.0, "cluster-interest:unsub-ms": 3.0})
        res.add("chorus", {"cluster-interest-ms": 406.125, "cluster-interest-mem": 655.7,
                           "cluster-pubsub-16b": 600_000.0})
        meta = report([])["meta"]
        meta["counts"] = {"conns": 10, "cluster-interest": 100_000}
        rep = run.build_report(res, meta, ["cluster-pubsub-16b", "cluster-interest"], [])
        by = {f["key"]: f for f in rep["figures"]}
        self.assertEqual(list(by), ["cluster-pubsub-16b", "cluster-interest-ms", "cluster-interest-mem"])
        self.assertIn("100,000 subscriptions on n1", by["cluster-interest-ms"]["title"])
        self.assertAlmostEqual(by["cluster-interest-ms"]["ratio"], 0.5)
        self.assertAlmostEqual(by["cluster-pubsub-16b"]["ratio"], 1.5)
        self.assertEqual(rep["extras"]["reference"]["cluster-interest:unsub-ms"], 3.0)
        self.assertEqual(run.fmt("cluster-interest-ms", 812.25), "812.2")
        self.assertEqual(run.fmt("cluster-interest-mem", 1311.4), "1,311")
        md = run.render_markdown(rep)
        self.assertIn("| memory per route subscription (n2) | B | 1,311 | 656 | 0.50x | lower", md)
        # Cluster figures have no raw-TCP fraction, even when the limit was measured.
        res.add("none", {"rawtcp-16b": 1e9})
        rep = run.build_report(res, meta, ["cluster-pubsub-16b"], ["rawtcp-16b"])
        self.assertEqual(rep["fractions_of_raw_tcp"], [])


class ClusteredJetStream(unittest.TestCase):
    def test_group_turns_and_counts(self):
        units, raw = run.select_units(["cjs"])
        self.assertEqual(units, ["cjs-async-file-16b", "cjs-async-file-1k", "cjs-async-mem-16b",
                                 "cjs-async-mem-1k", "cjs-sync-file-1k", "cjs-fetch", "cjs-failover"])
        self.assertEqual(raw, [])
        default, _ = run.select_units(None)
        self.assertTrue(set(units) <= set(default))
        for u in run.CJS_PUB_UNITS:
            self.assertEqual(run.turns_for(u), run.JS_TURNS)
        for u in ("cjs-fetch", "cjs-failover"):
            self.assertEqual(run.turns_for(u), run.JSC_TURNS)
        for scale in (run.FULL, run.SMOKE):
            self.assertEqual(sorted(scale.cjs), sorted(units))
            self.assertTrue(all(v > 0 for v in scale.cjs.values()))
        self.assertEqual(run.js_unit_parts("cjs-async-mem-1k"), ("async", "memory", 1024))

    def test_figure_keys_belong_to_their_units(self):
        self.assertEqual(run.unit_of("cjs-failover-max"), "cjs-failover")
        self.assertEqual(run.unit_of("cjs-sync-file-1k-p99"), "cjs-sync-file-1k")
        self.assertEqual(run.unit_of("cjs-async-file-1k-rss"), "cjs-async-file-1k")
        self.assertEqual(run.unit_of("jsc-fetch-noack"), "jsc-fetch-noack")
        self.assertEqual(run.unit_of("kv-put-p50"), "kv")
        self.assertTrue(run.has_always("cjs-async-file-1k-rss"))
        self.assertTrue(run.has_always("kv-get-p99"))
        self.assertFalse(run.has_always("cjs-failover-max"))
        self.assertFalse(run.has_always("jsc-push"))

    def test_node_conf_has_jetstream_and_cluster(self):
        conf = run.server_conf(1, Path("/tmp/s1"), "always", run.cluster_conf(3, [1, 2, 3]))
        self.assertIn('store_dir: "/tmp/s1"\n  sync_interval: always\n}\n', conf)
        self.assertIn("server_name: n3\n", conf)
        self.assertIn("  name: bench\n", conf)

    def test_report_aggregates_and_sections(self):
        res = run.Results(rounds=3)
        for ms in (4000.0, 5000.0, 9000.0):
            res.add("reference", {"cjs-failover": ms, "cjs-failover-max": ms})
        for ms in (1500.0, 1200.0, 1300.0):
            res.add("chorus", {"cjs-failover": ms, "cjs-failover-max": ms})
        res.add("reference", {"cjs-async-file-1k": 20_000.0, "cjs-async-file-1k-rss": 40.0})
        res.add("reference-always", {"cjs-async-file-1k": 1_000.0, "cjs-async-file-1k-rss": 41.0})
        res.add("chorus", {"cjs-async-file-1k": 30_000.0, "cjs-async-file-1k-rss": 20.0})
        res.notes.append({"unit": "cjs-failover", "round": 1, "server": "chorus", "leader": "n1",
                          "publisher": "n2", "new_leader": "n3"})
        meta = report([])["meta"]
        rep = run.build_report(res, meta, ["cjs-async-file-1k", "cjs-failover"], [])
        by = {f["key"]: f for f in rep["figures"]}
        self.assertEqual(list(by), ["cjs-async-file-1k", "cjs-async-file-1k-rss", "cjs-failover",
                                    "cjs-failover-max"])
        self.assertEqual(by["cjs-failover"]["reference"]["median"], 5000.0)
        self.assertEqual(by["cjs-failover-max"]["reference"]["median"], 9000.0)
        self.assertEqual(by["cjs-failover-max"]["chorus"]["median"], 1500.0)
        self.assertAlmostEqual(by["cjs-async-file-1k"]["ratio_always"], 30.0)
        md = run.render_markdown(rep)
        self.assertIn("## Clustered JetStream (R3)", md)
        self.assertNotIn("## JetStream\n", md)
        self.assertIn("| R3 async publish, file, 1 KiB | msgs/s | 20,000 | 1,000 | 30,000 | 1.50x | "
                      "30.00x | higher", md)
        self.assertIn("| R3 failover: leader SIGKILL to PubAck, max | ms | 9,000.0 | "
                      "not run | 1,500.0 | 0.17x | — | lower", md)
        self.assertIn("- cjs-failover round 1 (chorus): leader n1, publisher n2, new leader n3", md)
        root = ET.fromstring(run.render_svg(rep))
        ns = "{http://www.w3.org/2000/svg}"
        # Two bars for each figure with a sync-always turn, one for the failover figures.
        bars = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
        self.assertEqual(len(bars), 6)
        self.assertNotIn("failed", [t.text for t in root.iter(ns + "text")])


if __name__ == "__main__":
    unittest.main()
