"""The built-in site: on synack (DgramLink pair) it shows the visitor's own connection; on the
kernel's TCP it says the details are unavailable."""

from __future__ import annotations

import json

from http_helpers import get, run_async, serving
from synack.http.site import Site
from synack.link.pcap import read_pcap
from synack.log.jsonl import read_jsonl
from synack.wire.packet import parse_packet, tcp_in
from synack.wire.tcp import Flags


@run_async
async def test_page_shows_the_visitors_connection_on_synack():
    site = Site()
    async with serving("synack", site) as h:
        site.trace = h.trace
        c = await h.client()
        mine = c.writer.get_extra_info("synack_connection")          # the client's end, on stack A
        await c.send(get("/"))
        [first] = await c.responses(["GET"])
        await c.send(get("/"))
        [r] = await c.responses(["GET"])
        page = r.body.decode()
        assert first.status == r.status == 200
        assert f"<code>{mine.iss}</code>" in page                      # "your ISN"
        assert f"<code>{mine.irs}</code>" in page                      # synack's ISN
        assert "192.0.2.1:" + str(mine.id.local_port) in page
        assert "number 2 on this connection" in page
        assert "mss 1460" in page and "sackOK" in page and "wscale" in page
        assert "SYN-RECEIVED" in page and "ESTABLISHED" in page
        assert "<svg" in page and "</svg>" in page
        # events and the capture of this very connection
        await c.send(get("/events/self"))
        [ev] = await c.responses(["GET"])
        doc = json.loads(ev.body)
        serial = doc["serial"]
        kinds = [d["ev"] for d in doc["records"]]
        assert "SegmentIn" in kinds and "SegmentOut" in kinds and "StateChanged" in kinds
        await c.send(get(f"/events/{serial}.jsonl"))
        [ev] = await c.responses(["GET"])
        logged = [d["ev"] for d in read_jsonl(ev.body.decode().splitlines())]   # a valid event log
        assert logged[:len(kinds)] == kinds                          # ...that has grown since
        await c.send(get(f"/capture/{serial}.pcap"))
        [cap] = await c.responses(["GET"])
        assert cap.header("content-type") == "application/vnd.tcpdump.pcap"
        segs = [tcp_in(parse_packet(rec.data)) for rec in read_pcap(cap.body)]
        assert segs[0].flags == Flags.SYN and segs[0].seq == mine.iss
        assert segs[1].flags == Flags.SYN | Flags.ACK
        assert sum(len(s.payload) for s in segs) > 1000              # the requests and the first pages
        await c.send(get("/connections"))
        [tab] = await c.responses(["GET"])
        assert f"192.0.2.1:{mine.id.local_port}" in tab.body.decode() and "(you)" in tab.body.decode()
        await c.send(get("/connections.json"))
        [tj] = await c.responses(["GET"])
        rows = json.loads(tj.body)["connections"]
        assert any(r["you"] and r["state"] == "ESTABLISHED" for r in rows)
        await c.send(get("/events/9999"))
        [nf] = await c.responses(["GET"])
        assert nf.status == 404
        await c.close()


@run_async
async def test_page_on_the_kernel_says_details_are_unavailable():
    async with serving("kernel", Site()) as h:
        c = await h.client()
        await c.send(get("/") + get("/connections") + get("/", method="DELETE"))
        page, conns, bad = await c.responses(["GET", "GET", "DELETE"])
        assert page.status == 200 and "unavailable" in page.body.decode()
        assert "127.0.0.1:" in page.body.decode()
        assert conns.status == 200 and "unavailable" in conns.body.decode()
        assert bad.status == 405
        await c.close()
