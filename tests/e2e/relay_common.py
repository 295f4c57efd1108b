"""Relay tests shared by test_relay_udp.py and test_relay_tcp.py.

Topology (one transport end to end):
    phone SIPp  --T-->  sipwitness  --T-->  provider SIPp (the upstream)
"""

from __future__ import annotations

import re

from harness import (FAKE_AUTHORIZATION, HOST, E2ETestCase, find_message, free_port,
                     header_values, start_line, via_param)

WWW_AUTHENTICATE = ('WWW-Authenticate: Digest realm="x", nonce="e2e-fixed-nonce-0001", '
                    'algorithm=MD5, qop="auth"')


def lines_of(message: str) -> list[str]:
    return [line.rstrip("\r") for line in message.split("\n")]


def body_of(message: str) -> str:
    text = message.replace("\r\n", "\n")
    return text.split("\n\n", 1)[1].strip("\n") if "\n\n" in text else ""


def branch_of(via: str) -> str | None:
    return via_param(via, "branch")


class RelayTests(E2ETestCase):
    """Mixin-ish base: subclasses set transport = "udp" | "tcp"."""

    transport = "udp"


    # -- helpers -------------------------------------------------------------
    @property
    def T(self) -> str:
        return self.transport

    def provider(self, scenario: str, **kw):
        kw.setdefault("timeout", 25)
        kw.setdefault("name", "provider")
        return self.start_sipp(scenario, transport=self.T, **kw)

    def phone(self, scenario: str, sw, **kw):
        kw.setdefault("timeout", 20)
        kw.setdefault("name", "phone")
        return self.run_sipp(scenario, (HOST, sw.port(self.T)), transport=self.T, **kw)

    def assertProxyVia(self, via: str, sw, what: str) -> None:
        """via is sipwitness's own Via: right transport, its listener address, RFC 3261 branch."""
        self.assertRegex(via, rf"^SIP/2\.0/{self.T.upper()}\s+127\.0\.0\.1:{sw.port(self.T)}\s*;",
                         f"{what}: top Via should be sipwitness's ({self.T} listener "
                         f"127.0.0.1:{sw.port(self.T)}): {via}")
        self.assertTrue((branch_of(via) or "").startswith("z9hG4bK"),
                        f"{what}: sipwitness's Via branch lacks the z9hG4bK cookie: {via}")

    def assertSameHeaders(self, sent: str, arrived: str, names: list[str], what: str) -> None:
        for name in names:
            self.assertEqual(header_values(sent, name), header_values(arrived, name),
                             f"{what}: header {name} changed in transit\n--- sent ---\n{sent}"
                             f"\n--- arrived ---\n{arrived}")

    def check_phone_via_below(self, arrived: str, sent: str, sw, what: str,
                              source_port: int | None) -> None:
        vias = header_values(arrived, "via")
        phone_vias = header_values(sent, "via")
        self.assertEqual(len(vias), len(phone_vias) + 1,
                         f"{what}: expected sipwitness's Via on top of the sender's Via(s):\n{arrived}")
        self.assertProxyVia(vias[0], sw, what)
        self.assertNotEqual(branch_of(vias[0]), branch_of(phone_vias[0]),
                            f"{what}: sipwitness must use its own branch")
        below = vias[1]
        self.assertEqual(branch_of(below), branch_of(phone_vias[0]),
                         f"{what}: the sender's Via must follow unchanged apart from received/rport:"
                         f"\n{arrived}")
        self.assertTrue(below.startswith(phone_vias[0].split(";")[0]),
                        f"{what}: sender's Via sent-by changed: {below}")
        self.assertEqual(via_param(below, "received"), "127.0.0.1",
                         f"{what}: sender's Via needs received= (RFC 3581: rport present): {below}")
        rport = via_param(below, "rport")
        self.assertTrue(rport and rport.isdigit(),
                        f"{what}: sender's Via needs rport=<source port>: {below}")
        if source_port is not None:
            self.assertEqual(int(rport), source_port, f"{what}: rport is not the source port: {below}")

    # -- REGISTER -----------------------------------------------------------
    def test_register(self):
        prov = self.provider("provider_registrar.xml")
        with self.sipwitness(upstream_port=prov.port, upstream_transport=self.T) as sw:
            phone_port = free_port("both")
            phone = self.phone("phone_register.xml", sw, port=phone_port)
            provr = prov.wait()
            self.assertSippOk(phone, 1, sw)
            self.assertSippOk(provr, 1, sw)

            sent = find_message(phone.sent(), r"^REGISTER ")
            reg = find_message(provr.received(), r"^REGISTER ")
            self.assertIsNotNone(reg, provr.describe())
            self.assertEqual(start_line(reg), start_line(sent), "Request-URI changed")
            self.check_phone_via_below(reg, sent, sw, "REGISTER at provider", phone_port)
            self.assertIn(FAKE_AUTHORIZATION, lines_of(reg),
                          f"Authorization header not byte-identical at the provider:\n{reg}")
            self.assertEqual(header_values(reg, "max-forwards"), ["69"],
                             f"Max-Forwards not decremented once:\n{reg}")
            paths = header_values(reg, "path")
            self.assertTrue(paths, f"sipwitness should add a Path header to REGISTER:\n{reg}")
            self.assertIn("127.0.0.1", paths[0], f"Path should point at sipwitness: {paths}")
            self.assertRegex(paths[0], r";\s*lr\b", f"Path URI needs ;lr: {paths}")
            self.assertSameHeaders(sent, reg, ["from", "to", "call-id", "cseq", "contact",
                                               "expires", "user-agent"], "REGISTER")

            ok = find_message(phone.received(), r"^SIP/2\.0 200")
            vias = header_values(ok, "via")
            self.assertEqual(len(vias), 1, f"phone should get exactly its own Via back:\n{ok}")
            self.assertEqual(branch_of(vias[0]), branch_of(header_values(sent, "via")[0]))
            self.assertTrue(any("expires=3600" in c for c in header_values(ok, "contact")),
                            f"200 Contact not relayed:\n{ok}")

    def test_register_challenge(self):
        prov = self.provider("provider_registrar_challenge.xml")
        with self.sipwitness(upstream_port=prov.port, upstream_transport=self.T) as sw:
            phone = self.phone("phone_register_challenge.xml", sw)
            provr = prov.wait()
            self.assertSippOk(phone, 1, sw)
            self.assertSippOk(provr, 1, sw)
            challenge = find_message(phone.received(), r"^SIP/2\.0 401")
            self.assertIn(WWW_AUTHENTICATE, lines_of(challenge),
                          f"WWW-Authenticate not byte-identical at the phone:\n{challenge}")
            regs = [m for m in provr.received() if start_line(m).startswith("REGISTER ")]
            self.assertEqual(len(regs), 2, "provider should see exactly two REGISTERs")
            self.assertIn(FAKE_AUTHORIZATION, lines_of(regs[1]),
                          f"Authorization header not byte-identical at the provider:\n{regs[1]}")
            self.assertNotEqual(branch_of(header_values(regs[0], "via")[0]),
                                branch_of(header_values(regs[1], "via")[0]),
                                "a new REGISTER transaction needs a new branch from sipwitness")

    # -- INVITE / ACK / BYE ---------------------------------------------------
    def test_invite_ack_bye(self):
        prov = self.provider("uas_call.xml")
        with self.sipwitness(upstream_port=prov.port, upstream_transport=self.T) as sw:
            phone_port = free_port("both")
            phone = self.phone("uac_call.xml", sw, service="2000", port=phone_port)
            provr = prov.wait()
            self.assertSippOk(phone, 1, sw)
            self.assertSippOk(provr, 1, sw)

            sent = find_message(phone.sent(), r"^INVITE ")
            inv = find_message(provr.received(), r"^INVITE ")
            self.check_phone_via_below(inv, sent, sw, "INVITE at provider", phone_port)
            rr = header_values(inv, "record-route")
            self.assertTrue(rr, f"sipwitness should Record-Route INVITE:\n{inv}")
            self.assertIn("127.0.0.1", rr[0])
            self.assertRegex(rr[0], r";\s*lr\b", f"Record-Route must be loose (;lr): {rr}")
            self.assertEqual(header_values(inv, "max-forwards"), ["69"])
            self.assertEqual(body_of(inv), body_of(sent), "SDP body changed in transit")
            self.assertSameHeaders(sent, inv, ["from", "to", "call-id", "cseq", "contact",
                                               "content-type"], "INVITE")

            ok = find_message(phone.received(), r"^SIP/2\.0 200.*")
            self.assertEqual(header_values(ok, "record-route"), rr,
                             f"Record-Route not relayed back in the 200:\n{ok}")
            self.assertEqual(len(header_values(ok, "via")), 1, ok)
            for method in ("ACK", "BYE"):
                got = find_message(provr.received(), rf"^{method} ")
                self.assertIsNotNone(got, f"{method} did not reach the provider")
                self.assertEqual(header_values(got, "max-forwards"), ["69"], got)
                self.assertFalse(any(f":{sw.port(self.T)}" in r for r in header_values(got, "route")),
                                 f"sipwitness should remove its own Route from {method}:\n{got}")
            bye_sent = find_message(phone.sent(), r"^BYE ")
            self.assertTrue(header_values(bye_sent, "route"), "phone's BYE should carry Route")

    def test_sequential_calls(self):
        calls = 20
        prov = self.provider("uas_call.xml", calls=calls)
        with self.sipwitness(upstream_port=prov.port, upstream_transport=self.T) as sw:
            phone = self.phone("uac_call.xml", sw, service="2000", calls=calls, rate=20)
            provr = prov.wait()
            self.assertSippOk(phone, calls, sw)
            self.assertSippOk(provr, calls, sw)

    def test_cross_transport_call(self):
        """Phone on this transport, provider on the other one (e.g. TCP phones,
        UDP trunk): a call, ACK and BYE through the route set."""
        other = "tcp" if self.T == "udp" else "udp"
        prov = self.start_sipp("uas_call.xml", transport=other, timeout=25, name="provider")
        with self.sipwitness(upstream_port=prov.port, upstream_transport=other) as sw:
            phone = self.phone("uac_call.xml", sw, service="2000")
            provr = prov.wait()
            self.assertSippOk(phone, 1, sw)
            self.assertSippOk(provr, 1, sw)
            inv = find_message(provr.received(), r"^INVITE ")
            top = header_values(inv, "via")[0]
            self.assertRegex(top, rf"^SIP/2\.0/{other.upper()}\s+127\.0\.0\.1:{sw.port(other)}\s*;",
                             f"sipwitness's Via must name the outgoing transport and its listener: {top}")
            for method in ("ACK", "BYE"):
                self.assertIsNotNone(find_message(provr.received(), rf"^{method} "),
                                     f"{method} did not reach the provider")

    # -- incoming call through the registration binding ------------------------
    def incoming_call(self, target: str, behind_nat: bool):
        """Provider calls the registered phone. behind_nat: the phone registers an
        unreachable contact (192.0.2.10:5060, TEST-NET-1), so only the binding
        (the REGISTER's source address/connection) can reach it."""
        phone_port = free_port("both")
        contact_hostport = "192.0.2.10:5060" if behind_nat else f"127.0.0.1:{phone_port}"
        if target == "contact":
            ruri = f"sip:1001@{contact_hostport};transport={self.T.upper()}"
        else:
            ruri = "sip:1001@example.test"
        prov = self.provider("provider_register_then_call.xml", keys={"ruri": ruri})
        with self.sipwitness(upstream_port=prov.port, upstream_transport=self.T) as sw:
            phone = self.phone("phone_register_then_answer.xml", sw, port=phone_port,
                               keys={"contact_hostport": contact_hostport})
            provr = prov.wait()
            self.assertSippOk(phone, 1, sw)
            self.assertSippOk(provr, 1, sw)

            sent = find_message(provr.sent(), r"^INVITE ")
            inv = find_message(phone.received(), r"^INVITE ")
            vias = header_values(inv, "via")
            self.assertEqual(len(vias), 2, f"phone's INVITE should carry 2 Vias:\n{inv}")
            self.assertProxyVia(vias[0], sw, "INVITE at phone")
            self.assertEqual(branch_of(vias[1]), branch_of(header_values(sent, "via")[0]),
                             f"provider's Via must follow sipwitness's:\n{inv}")
            rr = header_values(inv, "record-route")
            self.assertTrue(rr and "127.0.0.1" in rr[0], f"INVITE not record-routed:\n{inv}")
            self.assertEqual(header_values(inv, "max-forwards"), ["69"], inv)
            self.assertEqual(body_of(inv), body_of(sent), "SDP body changed in transit")
            for method in ("ACK", "BYE"):
                self.assertIsNotNone(find_message(phone.received(), rf"^{method} "),
                                     f"{method} did not reach the phone")

    def test_incoming_call_to_contact(self):
        self.incoming_call("contact", behind_nat=False)

    def test_incoming_call_to_nated_contact(self):
        self.incoming_call("contact", behind_nat=True)

    def test_incoming_call_to_aor(self):
        self.incoming_call("aor", behind_nat=True)

    # -- CANCEL ----------------------------------------------------------------
    def test_cancel_ringing_call(self):
        prov = self.provider("uas_cancel.xml")
        with self.sipwitness(upstream_port=prov.port, upstream_transport=self.T) as sw:
            phone = self.phone("uac_cancel.xml", sw, service="2000")
            provr = prov.wait()
            self.assertSippOk(phone, 1, sw)
            self.assertSippOk(provr, 1, sw)
            inv = find_message(provr.received(), r"^INVITE ")
            cancel = find_message(provr.received(), r"^CANCEL ")
            self.assertIsNotNone(cancel, "CANCEL did not reach the provider")
            self.assertEqual(branch_of(header_values(cancel, "via")[0]),
                             branch_of(header_values(inv, "via")[0]),
                             "the CANCEL sent upstream must carry the same top Via branch as the "
                             f"INVITE (RFC 3261 9.1/16.10)\n--- INVITE ---\n{inv}\n--- CANCEL ---\n{cancel}")
            self.assertEqual(start_line(cancel).split()[1], start_line(inv).split()[1],
                             "CANCEL Request-URI must equal the INVITE's")
            self.assertIsNotNone(find_message(provr.received(), r"^ACK "),
                                 "ACK for the 487 did not reach the provider")
            final = find_message(phone.received(), r"^SIP/2\.0 487")
            self.assertEqual(len(header_values(final, "via")), 1, final)
            self.assertTrue(re.search(r"CSeq:\s*1 INVITE", final), final)
