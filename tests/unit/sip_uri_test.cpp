// URI, name-addr, Via and parameter parsing. Table-driven; each row is traced.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/sip/message.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"

namespace {

using sw::Errc;
using sw::sip::find_param;
using sw::sip::parse_host_port;
using sw::sip::parse_name_addr;
using sw::sip::parse_uri;
using sw::sip::parse_via;
using sw::sip::tag_of;

// ---------------------------------------------------------------------------
// parse_uri

TEST(ParseUri, ValidTable) {
  struct Row {
    std::string text;
    std::string_view scheme, user, password, host;
    std::uint16_t port;
    std::string_view params, headers;
  };
  const Row rows[] = {
      {"sip:alice@atlanta.example.com", "sip", "alice", "", "atlanta.example.com", 0, "", ""},
      {"sips:alice@atlanta.example.com:5061", "sips", "alice", "", "atlanta.example.com", 5061, "",
       ""},
      {"sip:alice:secretword@atlanta.example.com;transport=tcp", "sip", "alice", "secretword",
       "atlanta.example.com", 0, ";transport=tcp", ""},
      {"sip:atlanta.example.com", "sip", "", "", "atlanta.example.com", 0, "", ""},
      {"sip:192.0.2.4:5060;transport=udp;lr", "sip", "", "", "192.0.2.4", 5060, ";transport=udp;lr",
       ""},
      {"sip:[2001:db8::10]:5070;maddr=239.255.255.1;ttl=15", "sip", "", "", "[2001:db8::10]", 5070,
       ";maddr=239.255.255.1;ttl=15", ""},
      {"sip:bob@[2001:db8::10]", "sip", "bob", "", "[2001:db8::10]", 0, "", ""},
      {"sip:alice@atlanta.example.com?subject=project%20x&priority=urgent", "sip", "alice", "",
       "atlanta.example.com", 0, "", "subject=project%20x&priority=urgent"},
      {"sip:alice@atlanta.example.com;maddr=239.255.255.1?Route=%3Csip:x%3E", "sip", "alice", "",
       "atlanta.example.com", 0, ";maddr=239.255.255.1", "Route=%3Csip:x%3E"},
      {"sip:host.example.com?h=v", "sip", "", "", "host.example.com", 0, "", "h=v"},
      {"SIP:Alice@Atlanta.Example.COM", "SIP", "Alice", "", "Atlanta.Example.COM", 0, "", ""},
      {"sip:+1-212-555-1212:1234@gateway.com;user=phone", "sip", "+1-212-555-1212", "1234",
       "gateway.com", 0, ";user=phone", ""},
      // RFC 3261 25.1 user-unreserved allows ';' and '?' in the user part.
      {"sip:user;par=u%40example.net@example.com", "sip", "user;par=u%40example.net", "",
       "example.com", 0, "", ""},
      {"sip:a?b@example.com", "sip", "a?b", "", "example.com", 0, "", ""},
      {"sip:a?b@example.com?h=v", "sip", "a?b", "", "example.com", 0, "", "h=v"},
      // Escapes are kept as written; comparing or unescaping is the caller's business.
      {"sip:%61lice@atlanta.example.com", "sip", "%61lice", "", "atlanta.example.com", 0, "", ""},
      {"sip:alice@atlanta.example.com:65535", "sip", "alice", "", "atlanta.example.com", 65535, "",
       ""},
      {"sip:alice@under_score.example.com", "sip", "alice", "", "under_score.example.com", 0, "",
       ""},
      // Other schemes are opaque: only the scheme is filled in.
      {"tel:+358-555-1234567;postd=pp22", "tel", "", "", "", 0, "", ""},
      {"urn:service:sos", "urn", "", "", "", 0, "", ""},
      {"soap.beep://192.0.2.103:3002", "soap.beep", "", "", "", 0, "", ""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.text);
    auto r = parse_uri(row.text);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->scheme, row.scheme);
    EXPECT_EQ(r->user, row.user);
    EXPECT_EQ(r->password, row.password);
    EXPECT_EQ(r->host, row.host);
    EXPECT_EQ(r->port, row.port);
    EXPECT_EQ(r->params, row.params);
    EXPECT_EQ(r->headers, row.headers);
  }
}

TEST(ParseUri, InvalidTable) {
  const std::string rows[] = {
      "sip:alice@atlanta.example.com:0",
      "sip:alice@atlanta.example.com:65536",
      "sip:alice@atlanta.example.com:-1",
      "sip:alice@atlanta.example.com:abc",
      "sip:alice@atlanta.example.com:",
      "sip:alice@atlanta.example.com:5060x",
      "sip:alice@atlanta.example.com:5060:5061",
      "sip:",
      "sip:@atlanta.example.com",
      "sip:alice@",
      "sip:;transport=tcp",
      "alice@atlanta.example.com",
      ":alice@atlanta.example.com",
      "",
      "s!p:alice@atlanta.example.com",
      "sip:alice@atlanta example.com",
      "sip:alice@<atlanta.example.com>",
      "sip:alice@atlanta.example.com\r\n",
      "sip:\"alice\"@atlanta.example.com",
      "sip:[2001:db8::1",
      "sip:[2001:db8::1]x",
      "sip:[2001:db8::1]:",
      "sip:[]",
      "sip:alice@exa$mple.com",
      "tel:+1 212 555 0101",  // opaque schemes still may not contain whitespace
  };
  for (const auto& text : rows) {
    SCOPED_TRACE("'" + text + "'");
    auto r = parse_uri(text);
    if (r.ok()) {
      ADD_FAILURE() << "accepted, host '" << r->host << "'";
      continue;
    }
    EXPECT_EQ(r.error().code, Errc::bad_uri) << r.error().detail;
  }
}

TEST(ParseUri, ParameterAccessors) {
  auto r = parse_uri("sip:p1.example.com;LR;Transport=TCP;maddr=10.0.0.1;ttl=15");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_sip());
  EXPECT_FALSE(r->is_sips());
  EXPECT_TRUE(r->lr());  // parameter names compare case-insensitively
  EXPECT_EQ(r->transport(), "TCP");
  EXPECT_EQ(r->maddr(), "10.0.0.1");
  EXPECT_EQ(r->param("ttl"), "15");
  EXPECT_EQ(r->param("user"), std::nullopt);

  auto plain = parse_uri("sips:bob@biloxi.example.com");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->is_sip());
  EXPECT_TRUE(plain->is_sips());
  EXPECT_FALSE(plain->lr());
  EXPECT_EQ(plain->transport(), "");
  EXPECT_EQ(plain->maddr(), "");

  auto tel = parse_uri("tel:+1-212-555-0101");
  ASSERT_TRUE(tel.ok());
  EXPECT_FALSE(tel->is_sip());
  EXPECT_FALSE(tel->is_sips());
}

// ---------------------------------------------------------------------------
// parse_host_port

TEST(ParseHostPort, Table) {
  struct Row {
    std::string text;
    bool ok;
    std::string_view host;
    std::uint16_t port;
  };
  const Row rows[] = {
      {"example.com", true, "example.com", 0},
      {"example.com:5060", true, "example.com", 5060},
      {"192.0.2.1:1", true, "192.0.2.1", 1},
      {"[::1]:5060", true, "[::1]", 5060},
      {"[::1]", true, "[::1]", 0},
      {"[2001:db8::1]:65535", true, "[2001:db8::1]", 65535},
      {"under_score.example", true, "under_score.example", 0},
      {"", false, {}, 0},
      {"host:", false, {}, 0},
      {"host:0", false, {}, 0},
      {"host:65536", false, {}, 0},
      {"host:50 60", false, {}, 0},
      {":5060", false, {}, 0},
      {"[::1]:", false, {}, 0},
      {"[::1", false, {}, 0},
      {"[::1]5060", false, {}, 0},
      {"[]", false, {}, 0},
      {"ho st", false, {}, 0},
      {"host/path", false, {}, 0},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE("'" + row.text + "'");
    auto r = parse_host_port(row.text);
    if (!row.ok) {
      ASSERT_FALSE(r.ok()) << "accepted as host '" << r->host << "' port " << r->port;
      EXPECT_EQ(r.error().code, Errc::bad_uri);
      continue;
    }
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->host, row.host);
    EXPECT_EQ(r->port, row.port);
  }
}

// ---------------------------------------------------------------------------
// find_param

TEST(FindParam, Table) {
  struct Row {
    std::string params, name;
    std::optional<std::string_view> value;
  };
  const Row rows[] = {
      {";lr;transport=tcp", "lr", ""},
      {";lr;transport=tcp", "transport", "tcp"},
      {";lr;transport=tcp", "TRANSPORT", "tcp"},
      {";lr;transport=tcp", "trans", std::nullopt},  // no prefix matches
      {";translr", "lr", std::nullopt},
      {" ; tag = abc ", "tag", "abc"},
      {";\r\n  tag = 98asjd8", "tag", "98asjd8"},  // folded, as in RFC 4475 wsinv
      {";x=\"a;b\";y=1", "x", "\"a;b\""},          // quoted values keep their quotes
      {";x=\"a;b\";y=1", "y", "1"},
      {";x=\"q\\\"; y=2\";y=3", "y", "3"},  // escaped quote does not end the string
      {"", "tag", std::nullopt},
      {";tag=", "tag", ""},
      {"name=1;a=2", "name", std::nullopt},  // text before the first ';' is not a parameter
      {"name=1;a=2", "a", "2"},
      {";a=1;a=2", "a", "1"},  // first occurrence wins
      {";a;b;", "b", ""},
      {";a;b;", "c", std::nullopt},
      {";branch=z9hG4bKsw1.2;swl=0", "swl", "0"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE("params '" + row.params + "' name '" + row.name + "'");
    EXPECT_EQ(find_param(row.params, row.name), row.value);
  }
}

// ---------------------------------------------------------------------------
// parse_name_addr

TEST(ParseNameAddr, ValidTable) {
  struct Row {
    std::string text;
    std::string_view display, uri_text, params;
    std::string_view user, host, uri_params;
  };
  const Row rows[] = {
      {"\"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774", "\"Alice\"",
       "sip:alice@atlanta.example.com", ";tag=1928301774", "alice", "atlanta.example.com", ""},
      {R"("A \"quoted\" name" <sip:a@b.example>)", R"("A \"quoted\" name")", "sip:a@b.example", "",
       "a", "b.example", ""},
      {R"("J Rosenberg \\\"" <sip:jdrosen@example.com>)", R"("J Rosenberg \\\"")",
       "sip:jdrosen@example.com", "", "jdrosen", "example.com", ""},
      {"\"Smith, John\" <sip:j@b.example>", "\"Smith, John\"", "sip:j@b.example", "", "j",
       "b.example", ""},
      {"\"<sip:fake@x.example>\" <sip:real@b.example>", "\"<sip:fake@x.example>\"",
       "sip:real@b.example", "", "real", "b.example", ""},
      {"\"\" <sip:a@b.example>", "\"\"", "sip:a@b.example", "", "a", "b.example", ""},
      {"Bob <sips:bob@biloxi.example.com>;expires=60", "Bob", "sips:bob@biloxi.example.com",
       ";expires=60", "bob", "biloxi.example.com", ""},
      {"Bob  Smith <sip:b@h.example>", "Bob  Smith", "sip:b@h.example", "", "b", "h.example", ""},
      {"token1~` token2'+_ token3*%!.- <sip:mundane@example.com>", "token1~` token2'+_ token3*%!.-",
       "sip:mundane@example.com", "", "mundane", "example.com", ""},
      {"caller<sip:caller@example.com>;tag=323", "caller", "sip:caller@example.com", ";tag=323",
       "caller", "example.com", ""},
      {"<sip:p1.example.com;lr>", "", "sip:p1.example.com;lr", "", "", "p1.example.com", ";lr"},
      // addr-spec: everything after the URI is a header parameter (RFC 3261 20.10).
      {"sip:alice@atlanta.example.com;tag=88sja8x", "", "sip:alice@atlanta.example.com",
       ";tag=88sja8x", "alice", "atlanta.example.com", ""},
      {"sip:+19725552222@gw1.example.net;unknownparam", "", "sip:+19725552222@gw1.example.net",
       ";unknownparam", "+19725552222", "gw1.example.net", ""},
      {"<sip:a@b.example> ;tag=1", "", "sip:a@b.example", ";tag=1", "a", "b.example", ""},
      {"  <sip:a@b.example>  ", "", "sip:a@b.example", "", "a", "b.example", ""},
      // RFC 4475 3.1.2.14 badaspec: liberal elements may ignore spaces inside <>.
      {"\"Watson, Thomas\" < sip:t.watson@example.org >", "\"Watson, Thomas\"",
       "sip:t.watson@example.org", "", "t.watson", "example.org", ""},
      {"<tel:+1-212-555-0101>", "", "tel:+1-212-555-0101", "", "", "", ""},
      {"<sip:a@b.example?Route=%3Csip:x%3E>", "", "sip:a@b.example?Route=%3Csip:x%3E", "", "a",
       "b.example", ""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.text);
    auto r = parse_name_addr(row.text);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->display, row.display);
    EXPECT_EQ(r->uri_text, row.uri_text);
    EXPECT_EQ(r->params, row.params);
    EXPECT_EQ(r->uri.user, row.user);
    EXPECT_EQ(r->uri.host, row.host);
    EXPECT_EQ(r->uri.params, row.uri_params);
  }
}

TEST(ParseNameAddr, InvalidTable) {
  struct Row {
    std::string text;
    Errc error;
  };
  const Row rows[] = {
      {"\"unterminated <sip:a@b.example>", Errc::bad_header},  // RFC 4475 quotbal
      {"\"trailing backslash\\", Errc::bad_header},
      {"\"Alice\" sip:a@b.example", Errc::bad_header},  // quoted name needs <>
      {"\"Alice\" x <sip:a@b.example>", Errc::bad_header},
      {"Bell, Alexander <sip:a.g.bell@example.com>", Errc::bad_header},  // RFC 4475 baddn
      {"Al\"ice <sip:a@b.example>", Errc::bad_header},
      {"<sip:a@b.example", Errc::bad_header},
      {"<sip:a@b.example> tag=1", Errc::bad_header},
      {"<>", Errc::bad_uri},
      {"<not a uri>", Errc::bad_uri},
      {"", Errc::bad_uri},
      {"sip:a@b.example:0", Errc::bad_uri},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE("'" + row.text + "'");
    auto r = parse_name_addr(row.text);
    if (r.ok()) {
      ADD_FAILURE() << "accepted: uri '" << r->uri_text << "'";
      continue;
    }
    EXPECT_EQ(r.error().code, row.error) << r.error().detail;
  }
}

// ---------------------------------------------------------------------------
// parse_via

TEST(ParseVia, ValidTable) {
  struct Row {
    std::string text;
    std::string_view transport, host;
    std::uint16_t port;
    std::string_view sent_by, branch, received;
    bool has_rport;
    std::string_view rport;
  };
  const Row rows[] = {
      {"SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds", "UDP",
       "pc33.atlanta.example.com", 0, "pc33.atlanta.example.com", "z9hG4bK776asdhds", "", false,
       ""},
      {"SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74b43", "TCP",
       "client.atlanta.example.com", 5060, "client.atlanta.example.com:5060", "z9hG4bK74b43", "",
       false, ""},
      {"SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.207;branch=z9hG4bK77asjd", "UDP", "192.0.2.1",
       5060, "192.0.2.1:5060", "z9hG4bK77asjd", "192.0.2.207", false, ""},
      // RFC 3581: rport without a value is a request, with a value it is filled in.
      {"SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKx", "UDP", "10.0.0.1", 0, "10.0.0.1", "z9hG4bKx",
       "", true, ""},
      {"SIP/2.0/UDP 10.0.0.1;rport=5066;received=203.0.113.9;branch=z9hG4bKx", "UDP", "10.0.0.1", 0,
       "10.0.0.1", "z9hG4bKx", "203.0.113.9", true, "5066"},
      {"SIP/2.0/UDP 10.0.0.1;RPORT=7;Branch=z9hG4bKcase", "UDP", "10.0.0.1", 0, "10.0.0.1",
       "z9hG4bKcase", "", true, "7"},
      // LWS around '/' and ';' (RFC 3261 25.1, RFC 4475 wsinv).
      {"SIP / 2.0 / TLS host.example.com ; branch = z9hG4bKabc", "TLS", "host.example.com", 0,
       "host.example.com", "z9hG4bKabc", "", false, ""},
      {"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw", "UDP", "192.0.2.2", 0,
       "192.0.2.2", "390skdjuw", "", false, ""},
      {"SIP\t/\t2.0\t/\tUDP\thost.example.com", "UDP", "host.example.com", 0, "host.example.com",
       "", "", false, ""},
      {"sip/2.0/udp host.example.com", "udp", "host.example.com", 0, "host.example.com", "", "",
       false, ""},
      {"SIP/2.0/WSS [2001:db8::9]:8443;branch=z9hG4bKv6", "WSS", "[2001:db8::9]", 8443,
       "[2001:db8::9]:8443", "z9hG4bKv6", "", false, ""},
      {"SIP/2.0/UDP h.example.com;received=[2001:db8::7];branch=z9hG4bK6", "UDP", "h.example.com",
       0, "h.example.com", "z9hG4bK6", "[2001:db8::7]", false, ""},
      {"SIP/2.0/SCTP host.example.com", "SCTP", "host.example.com", 0, "host.example.com", "", "",
       false, ""},
      {"  SIP/2.0/UDP host.example.com  ", "UDP", "host.example.com", 0, "host.example.com", "", "",
       false, ""},
      {"SIP/2.0/UDP host.example.com;ttl=1;maddr=224.0.1.75;branch=z9hG4bKm", "UDP",
       "host.example.com", 0, "host.example.com", "z9hG4bKm", "", false, ""},
      {"SIP/2.0/UDP host.example.com;branch=z9hG4bK1;x=\"quoted;value\"", "UDP", "host.example.com",
       0, "host.example.com", "z9hG4bK1", "", false, ""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.text);
    auto r = parse_via(row.text);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->transport, row.transport);
    EXPECT_EQ(r->host, row.host);
    EXPECT_EQ(r->port, row.port);
    EXPECT_EQ(r->sent_by, row.sent_by);
    EXPECT_EQ(r->branch, row.branch);
    EXPECT_EQ(r->received, row.received);
    EXPECT_EQ(r->has_rport, row.has_rport);
    EXPECT_EQ(r->rport, row.rport);
  }
}

// via-extension = generic-param, whose value may be a quoted-string (RFC 3261
// 25.1); a ';' inside the quotes is not a parameter separator.
TEST(ParseVia, QuotedParameterValueMayEndInSemicolon) {
  auto r = parse_via("SIP/2.0/UDP host.example.com;x=\"ends with;\";branch=z9hG4bK1");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->branch, "z9hG4bK1");
  EXPECT_EQ(sw::sip::find_param(r->params, "x"), "\"ends with;\"");
}

// sent-by = host [ COLON port ] with COLON = SWS ":" SWS (RFC 3261 25.1).
// branch, received and rport are read in the same pass that checks every
// parameter has a name: the first occurrence counts, names in any case, and a
// ';' inside a quoted value does not start a parameter.
TEST(ParseVia, ParametersReadInOnePass) {
  auto v = parse_via("SIP/2.0/UDP h;x=\";branch=fake\";BRANCH=z9hG4bKone;branch=z9hG4bKtwo;Received = 192.0.2.9;rport=5070");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->branch, "z9hG4bKone");
  EXPECT_EQ(v->received, "192.0.2.9");
  EXPECT_TRUE(v->has_rport);
  EXPECT_EQ(v->rport, "5070");
  auto flag = parse_via("SIP/2.0/UDP h;branch;rport");
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(flag->branch, "");
  EXPECT_TRUE(flag->has_rport);
  EXPECT_EQ(flag->rport, "");
  EXPECT_FALSE(parse_via("SIP/2.0/UDP h;branch=z9hG4bK1; ;rport").ok());
}

TEST(ParseVia, WhitespaceAroundSentByColon) {
  auto r = parse_via("SIP/2.0/UDP host.example.com : 5060;branch=z9hG4bK1");
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->host, "host.example.com");
  EXPECT_EQ(r->port, 5060);
  EXPECT_EQ(r->branch, "z9hG4bK1");
}

TEST(ParseVia, InvalidTable) {
  const std::string rows[] = {
      "SIP/3.0/UDP host.example.com",
      "SIP/2/UDP host.example.com",
      "SIP/2.0.0/UDP host.example.com",
      "SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw",  // RFC 4475 badvers
      "HTTP/2.0/UDP host.example.com",
      "SIP/2.0 host.example.com",
      "SIP/2.0/ host.example.com",
      "SIP/2.0/UDP",
      "SIP/2.0/UDP ",
      "SIP/2.0/UDPhost.example.com",
      "SIP/2.0/UDP host.example.com:0",
      "SIP/2.0/UDP host.example.com:99999",
      "SIP/2.0/UDP host.example.com garbage",
      "SIP/2.0/UDP ;branch=z9hG4bK1",
      "SIP/2.0/UDP [::1",
      "SIP/2.0/UDP 192.0.2.15;;",  // RFC 4475 badinv01
      "SIP/2.0/UDP host.example.com;",
      "SIP/2.0/UDP host.example.com;branch=z9hG4bK1;",
      "SIP/2.0/UDP host.example.com; ;branch=z9hG4bK1",
      ";",
      "",
  };
  for (const auto& text : rows) {
    SCOPED_TRACE("'" + text + "'");
    auto r = parse_via(text);
    if (r.ok()) {
      ADD_FAILURE() << "accepted: host '" << r->host << "'";
      continue;
    }
    EXPECT_EQ(r.error().code, Errc::bad_via) << r.error().detail;
  }
}

TEST(ParseVia, MagicCookieBranches) {
  auto rfc3261 = parse_via("SIP/2.0/UDP h.example.com;branch=z9hG4bK776asdhds");
  ASSERT_TRUE(rfc3261.ok());
  EXPECT_TRUE(rfc3261->branch.starts_with(sw::sip::kMagicCookie));
  auto rfc2543 = parse_via("SIP/2.0/UDP h.example.com;branch=390skdjuw");
  ASSERT_TRUE(rfc2543.ok());
  EXPECT_FALSE(rfc2543->branch.starts_with(sw::sip::kMagicCookie));
}

// ---------------------------------------------------------------------------
// tag_of

TEST(TagOf, Table) {
  struct Row {
    std::string value;
    std::string_view tag;
  };
  const Row rows[] = {
      {"<sip:a@b.example>;tag=x", "x"},
      {"sip:a@b.example;tag=x", "x"},  // addr-spec: the parameter is a header parameter
      {"\"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774", "1928301774"},
      {"\"A;tag=evil\" <sip:a@b.example>", ""},  // inside the display name
      {"<sip:a@b.example;tag=inuri>", ""},       // a URI parameter, not the header's tag
      {"<sip:a@b.example>;TAG=Upper", "Upper"},
      {"<sip:a@b.example> ; tag = spaced", "spaced"},
      {"<sip:a@b.example>;expires=5;tag=late", "late"},
      {"<sip:a@b.example>;tag", ""},
      {"\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
       "98asjd8"},
      {"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n", "1918181833n"},
      {"<sip:a@b.example>", ""},
      {"garbage", ""},
      {"", ""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.value);
    EXPECT_EQ(tag_of(row.value), row.tag);
  }
}

// From and To are single-valued: a second, comma-separated value is not part of
// the tag, and a message carrying one must be rejected rather than yield the tag
// "1, Carol <sip:carol@chicago.example.com>".
TEST(TagOf, SecondFromValueIsRejected) {
  std::string bytes =
      "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
      "To: Bob <sip:bob@biloxi.example.com>\r\n"
      "From: Alice <sip:alice@atlanta.example.com>;tag=1, Carol <sip:carol@chicago.example.com>\r\n"
      "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
      "CSeq: 314159 INVITE\r\n"
      "Content-Length: 0\r\n"
      "\r\n";
  auto r = sw::sip::parse(bytes, sw::sip::Framing::datagram);
  ASSERT_FALSE(r.ok()) << "accepted; From tag reads as '"
                       << tag_of(r->value(sw::sip::HeaderId::From)) << "'";
  // Either code fits; what matters is that the message is refused.
  EXPECT_TRUE(r.error().code == Errc::bad_header || r.error().code == Errc::duplicate_header)
      << r.error().detail;
}

// read_ipv4 accepts exactly what inet_pton(AF_INET) accepts, with the same bytes.
TEST(ReadIpv4, AgreesWithInetPton) {
  const char* rows[] = {"192.0.2.1", "0.0.0.0", "255.255.255.255", "10.0.0.01", "256.1.1.1", "1.2.3", "1.2.3.4.5",
                        "1..2.3", "1.2.3.4 ", " 1.2.3.4", "1.2.3.", ".1.2.3", "1234.1.1.1", "01.2.3.4", "1.2.3.4a",
                        "", "a.b.c.d", "127.0.0.1", "1.2.3.255", "1.2.3.-1"};
  for (const char* text : rows) {
    SCOPED_TRACE(text);
    unsigned char ours[4] = {}, theirs[4] = {};
    const bool read = sw::sip::read_ipv4(text, ours);
    ASSERT_EQ(read, inet_pton(AF_INET, text, theirs) == 1);
    if (read) {
      EXPECT_EQ(std::string_view(reinterpret_cast<char*>(ours), 4), std::string_view(reinterpret_cast<char*>(theirs), 4));
    }
  }
}

}  // namespace
