"""Network faults and transport limits: an unreachable upstream is answered
with 503 and the relay recovers by itself; a hostname upstream is resolved;
idle TCP connections are closed; the connection cap refuses extra connections;
an advertised address is what sipwitness writes into Via and Record-Route."""

from __future__ import annotations

import re
import socket
import time
import unittest

from harness import (HOST, E2ETestCase, TcpClient, UdpClient, free_port, make_request, status_code,
                     header_values)


def udp_provider() -> socket.socket:
    """A bare UDP socket standing in for the upstream, so the test sees exactly
    what sipwitness forwards."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.settimeout(3)
    return s


class NetworkFaults(E2ETestCase):
    def test_unreachable_tcp_upstream_gets_503_then_recovers(self):
        port = free_port("tcp")  # nothing listens there yet
        with self.sipwitness(upstream_uri=f"sip:{HOST}:{port};transport=tcp") as sw:
            with UdpClient() as phone:
                final, _ = self.assertAnsweredWithin(phone, (HOST, sw.udp_port), "OPTIONS", "z9hG4bKdown1", 503, 3.0)
                self.assertIn("next hop unreachable", final)

                # The upstream comes back: the next request goes through without a restart.
                upstream = socket.create_server((HOST, port))
                upstream.settimeout(5)
                try:
                    phone.send(make_request("OPTIONS", via=phone.via("z9hG4bKup1")), (HOST, sw.udp_port))
                    conn, _ = upstream.accept()
                    conn.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    text = data.decode()
                    self.assertTrue(text.startswith("OPTIONS sip:2000@example.test SIP/2.0"), text)
                    self.assertIn("z9hG4bKup1", text)  # the phone's Via, under ours
                    conn.close()
                finally:
                    upstream.close()
            self.assertRegex(sw.log(), r"tcp connect to 127\.0\.0\.1:\d+ failed")

    def test_hostname_upstream_is_resolved(self):
        provider = udp_provider()
        try:
            port = provider.getsockname()[1]
            with self.sipwitness(upstream_uri=f"sip:localhost:{port};transport=udp", listen=("udp",)) as sw:
                with UdpClient() as phone:
                    phone.send(make_request("OPTIONS", via=phone.via("z9hG4bKdns1")), (HOST, sw.udp_port))
                    data, _ = provider.recvfrom(65535)
                    self.assertTrue(data.decode().startswith("OPTIONS "), data)
        finally:
            provider.close()

    def test_idle_tcp_connection_is_closed(self):
        with self.sipwitness(upstream_port=free_port("udp"), extra_config="relay: { tcp_idle_timeout: 1s }") as sw:
            client = TcpClient((HOST, sw.tcp_port), timeout=5)
            try:
                started = time.monotonic()
                client.sock.settimeout(5)
                self.assertEqual(client.sock.recv(1), b"", "the idle connection should be closed")
                waited = time.monotonic() - started
                self.assertGreater(waited, 0.8)
                self.assertLess(waited, 4.0)
            finally:
                client.close()
            self.assertIsNotNone(sw.wait_for_log(r"closed: idle timeout"))

    def test_connection_cap_refuses_extra_connections(self):
        with self.sipwitness(upstream_port=free_port("udp"), extra_config="relay: { max_tcp_connections: 2 }") as sw:
            kept = [TcpClient((HOST, sw.tcp_port)) for _ in range(2)]
            extra = TcpClient((HOST, sw.tcp_port))
            try:
                self.assertTrue(extra.wait_closed(timeout=3), "the third connection should be refused")
                self.assertIsNotNone(sw.wait_for_log(r"refused: \d+ connections open \(relay.max_tcp_connections\)"))
                # The two within the cap still work: a request gets its answer (483 here).
                kept[0].send(make_request("OPTIONS", via=kept[0].via("z9hG4bKcap"), max_forwards=0))
                answer = kept[0].recv(timeout=3)
                self.assertEqual(status_code(answer or ""), 483, answer)
            finally:
                for c in kept + [extra]:
                    c.close()

    def test_advertised_address_in_via_and_record_route(self):
        provider = udp_provider()
        try:
            port = provider.getsockname()[1]
            with self.sipwitness(upstream_port=port, listen=(("udp", 0, "192.0.2.99:5099"),)) as sw:
                with UdpClient() as phone:
                    branch = "z9hG4bKadv1"
                    phone.send(make_request("INVITE", via=phone.via(branch)), (HOST, sw.udp_port))
                    data, proxy_addr = provider.recvfrom(65535)
                    invite = data.decode()
                    vias = header_values(invite, "Via")
                    self.assertTrue(vias[0].startswith("SIP/2.0/UDP 192.0.2.99:5099;branch=z9hG4bKsw"), vias)
                    rr = header_values(invite, "Record-Route")
                    self.assertTrue(rr and rr[0].startswith("<sip:192.0.2.99:5099;lr"), rr)
                    # A response whose top Via is the advertised address is recognised as
                    # ours and goes back to the phone (sent to sipwitness's real address).
                    lines = invite.split("\r\n")
                    response = ["SIP/2.0 486 Busy Here"] + [l for l in lines[1:] if l.split(":")[0] in
                                                          ("Via", "From", "To", "Call-ID", "CSeq")]
                    provider.sendto(("\r\n".join(response) + "\r\nContent-Length: 0\r\n\r\n").encode(), proxy_addr)
                    final, _ = phone.recv_final(timeout=3, branch=branch)
                    self.assertEqual(status_code(final or ""), 486, final)
                    self.assertEqual(len(header_values(final, "Via")), 1)
        finally:
            provider.close()


class ResponsePath(E2ETestCase):
    def test_tcp_response_uses_the_request_connection_without_rport(self):
        provider = udp_provider()
        try:
            with self.sipwitness(upstream_port=provider.getsockname()[1]) as sw:
                client = TcpClient((HOST, sw.tcp_port))
                try:
                    branch = "z9hG4bKnorport"
                    # sent-by names a port nobody listens on, and no rport: only the
                    # connection the request came in on can carry the response back.
                    client.send(make_request("OPTIONS", via=f"SIP/2.0/TCP {HOST}:5998;branch={branch}"))
                    data, proxy_addr = provider.recvfrom(65535)
                    lines = data.decode().split("\r\n")
                    response = ["SIP/2.0 200 OK"] + [l for l in lines[1:] if l.split(":")[0] in
                                                     ("Via", "From", "To", "Call-ID", "CSeq")]
                    provider.sendto(("\r\n".join(response) + "\r\nContent-Length: 0\r\n\r\n").encode(), proxy_addr)
                    answer = client.recv(timeout=3)
                    self.assertEqual(status_code(answer or ""), 200, answer)
                    self.assertIn(branch, answer)
                finally:
                    client.close()
                self.assertNotRegex(sw.log(), r"tcp connect to 127\.0\.0\.1:5998")
        finally:
            provider.close()

    def test_reply_leaves_from_the_listener_the_request_reached(self):
        with self.sipwitness(upstream_port=free_port("udp"), listen=("udp", "udp")) as sw:
            ports = [int(p) for p in re.findall(r"listening udp 127\.0\.0\.1:(\d+)", sw.log())]
            self.assertEqual(len(ports), 2, sw.log())
            with UdpClient() as phone:
                for port in ports:
                    phone.send(make_request("OPTIONS", via=phone.via(f"z9hG4bKl{port}"), max_forwards=0), (HOST, port))
                    phone.sock.settimeout(3)
                    data, source = phone.sock.recvfrom(65535)
                    self.assertEqual(status_code(data.decode()), 483)
                    self.assertEqual(source[1], port, "the reply must come from the socket the request was sent to")


if __name__ == "__main__":
    unittest.main()
