#include "diag/seal.hpp"

#include <gtest/gtest.h>

#include <string>

#include "test_messages.hpp"

// Lab seals: a message sealed by one sipwitness, changed the way ALGs change
// messages, and checked by another with the same key.
namespace sw::diag {
namespace {

using test::parse_ok;
using test::replace_all;
using test::replace_in_header_lines;
using test::sip_text;

constexpr std::string_view kKey = "lab key shared by inner and outer";
constexpr std::string_view kId = "0123456789abcdef";

std::string register_text() {
  return sip_text({
      "REGISTER sip:sip.example.com SIP/2.0",
      "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKsw1.2",
      "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-phone;rport=5060;received=192.168.1.20",
      "Max-Forwards: 69",
      "From: <sip:1001@sip.example.com>;tag=a1",
      "To: <sip:1001@sip.example.com>",
      "Call-ID: reg-1@192.168.1.20",
      "CSeq: 2 REGISTER",
      "Contact: <sip:1001@192.168.1.20:5060>",
      "Authorization: Digest username=\"1001\", realm=\"sip.example.com\", nonce=\"n1\", "
      "uri=\"sip:sip.example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5",
      "Content-Length: 0",
  });
}

std::string sealed(const std::string& text, std::string_view key = kKey, bool probe = false) {
  return add_seal(parse_ok(text), key, kId, probe);
}

const FieldChange* find(const SealCheck& c, std::string_view name) {
  for (const auto& change : c.changes)
    if (change.name == name) return &change;
  return nullptr;
}

TEST(Seal, UntouchedMessageIsIntactAndStripsBackToTheOriginal) {
  auto text = register_text();
  auto m = parse_ok(sealed(text));
  auto check = check_seal(m, kKey);
  EXPECT_EQ(check.status, SealCheck::Status::intact);
  EXPECT_EQ(check.id, kId);
  EXPECT_FALSE(check.probe);
  EXPECT_TRUE(check.changes.empty());
  ASSERT_NE(check.header, nullptr);
  EXPECT_EQ(strip_seal(m, check), text);
}

TEST(Seal, AddressesNeverAppearInTheSealLine) {
  // An ALG rewrites address text wherever it looks; inside the seal it must find none.
  auto line = make_seal(parse_ok(register_text()), kKey, kId);
  EXPECT_TRUE(line.starts_with("X-Sipwitness-Seal: v=1;id=0123456789abcdef;f=ruri:"));
  EXPECT_TRUE(line.ends_with("\r\n"));
  EXPECT_EQ(line.find("10.0.0.2"), std::string::npos);
  EXPECT_EQ(line.find("192.168"), std::string::npos);
}

TEST(Seal, NatHelperRewriteOfViaAndContactIsReportedFieldByField) {
  auto text = sealed(register_text());
  text = replace_in_header_lines(text, "Via: SIP/2.0/UDP 10.0.0.2", "10.0.0.2:5060", "203.0.113.1:5060");
  text = replace_in_header_lines(text, "Contact:", "192.168.1.20:5060", "203.0.113.1:1024");
  auto check = check_seal(parse_ok(text), kKey);
  EXPECT_EQ(check.status, SealCheck::Status::rewritten);
  ASSERT_EQ(check.changes.size(), 2u);
  EXPECT_EQ(check.changes[0].label, "Via");
  EXPECT_EQ(check.changes[0].sent, "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKsw1.2");
  EXPECT_EQ(check.changes[0].arrived, "SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKsw1.2");
  EXPECT_EQ(check.changes[1].label, "Contact");
  EXPECT_EQ(check.changes[1].sent, "<sip:1001@192.168.1.20:5060>");
  EXPECT_EQ(check.changes[1].arrived, "<sip:1001@203.0.113.1:1024>");
  EXPECT_FALSE(check.auth_changed());
}

TEST(Seal, DigestUriRewriteNamesTheParameterWithBothValues) {
  auto text = replace_all(sealed(register_text()), "uri=\"sip:sip.example.com\"", "uri=\"sip:203.0.113.9\"");
  auto check = check_seal(parse_ok(text), kKey);
  EXPECT_TRUE(check.auth_changed());
  const auto* uri = find(check, "authorization.0.uri");
  ASSERT_NE(uri, nullptr);
  EXPECT_EQ(uri->label, "Authorization uri=");
  EXPECT_EQ(uri->sent, "sip:sip.example.com");
  EXPECT_EQ(uri->arrived, "sip:203.0.113.9");
  EXPECT_NE(find(check, "authorization.0"), nullptr);  // the exact bytes changed too
  EXPECT_EQ(find(check, "authorization.0.response"), nullptr);
  EXPECT_EQ(find(check, "ruri"), nullptr);
}

TEST(Seal, RequotingTheAuthorizationChangesTheBytesButNoParameter) {
  auto text = replace_all(sealed(register_text()), "algorithm=MD5", "algorithm=\"MD5\"");
  auto check = check_seal(parse_ok(text), kKey);
  ASSERT_EQ(check.changes.size(), 1u);
  EXPECT_EQ(check.changes[0].label, "Authorization");
  EXPECT_TRUE(check.auth_changed());
}

TEST(Seal, RealmRewriteInAChallenge) {
  auto response = sip_text({
      "SIP/2.0 401 Unauthorized",
      "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKsw1.2",
      "From: <sip:1001@sip.example.com>;tag=a1",
      "To: <sip:1001@sip.example.com>;tag=p9",
      "Call-ID: reg-1@192.168.1.20",
      "CSeq: 1 REGISTER",
      "WWW-Authenticate: Digest realm=\"sip.example.com\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"",
      "Content-Length: 0",
  });
  auto text = replace_all(sealed(response), "realm=\"sip.example.com\"", "realm=\"203.0.113.1\"");
  auto check = check_seal(parse_ok(text), kKey);
  const auto* realm = find(check, "www-authenticate.0.realm");
  ASSERT_NE(realm, nullptr);
  EXPECT_EQ(realm->label, "WWW-Authenticate realm=");
  EXPECT_EQ(realm->sent, "sip.example.com");
  EXPECT_EQ(realm->arrived, "203.0.113.1");
  EXPECT_TRUE(check.auth_changed());
}

TEST(Seal, TruncatedAuthorizationStillCoveredWhole) {
  auto text = sealed(register_text());
  auto at = text.find(", algorithm=MD5");
  text.erase(at, std::string_view(", algorithm=MD5").size());
  auto check = check_seal(parse_ok(text), kKey);
  const auto* algorithm = find(check, "authorization.0.algorithm");
  ASSERT_NE(algorithm, nullptr);
  EXPECT_EQ(algorithm->sent, "MD5");
  EXPECT_EQ(algorithm->arrived, "(absent)");
}

TEST(Seal, RemovedAndAddedHeadersAreChanges) {
  auto text = sealed(register_text());
  auto contact = text.find("Contact:");
  text.erase(contact, text.find("\r\n", contact) + 2 - contact);
  auto call_id = text.find("Call-ID:");
  text.insert(call_id, "Contact: <sip:1001@203.0.113.1>\r\n");
  // A second Contact where there was one: its position is taken by the new one.
  auto check = check_seal(parse_ok(text), kKey);
  ASSERT_EQ(check.changes.size(), 1u);
  EXPECT_EQ(check.changes[0].arrived, "<sip:1001@203.0.113.1>");

  auto twice = replace_all(register_text(), "Contact: <sip:1001@192.168.1.20:5060>",
                           "Contact: <sip:1001@192.168.1.20:5060>\r\nContact: <sip:1001@192.168.1.20:5070>");
  auto two_contacts = sealed(twice);
  auto one_removed = replace_all(two_contacts, "Contact: <sip:1001@192.168.1.20:5070>\r\n", "");
  auto removed = check_seal(parse_ok(one_removed), kKey);
  ASSERT_EQ(removed.changes.size(), 1u);
  EXPECT_EQ(removed.changes[0].label, "Contact #2");
  EXPECT_EQ(removed.changes[0].arrived, "(absent)");
}

TEST(Seal, SdpRewriteShowsEachLineAndTheLength) {
  std::string sdp =
      "v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 192.168.1.20\r\n";
  auto invite = sip_text({"INVITE sip:2000@sip.example.com SIP/2.0",
                          "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKsw3",
                          "From: <sip:1001@sip.example.com>;tag=b",
                          "To: <sip:2000@sip.example.com>",
                          "Call-ID: call-1",
                          "CSeq: 1 INVITE",
                          "Content-Type: application/sdp",
                          "Content-Length: " + std::to_string(sdp.size())},
                         sdp);
  auto text = sealed(invite);
  auto body_at = text.find("\r\n\r\n") + 4;
  auto body = replace_all(text.substr(body_at), "o=- 1 1 IN IP4 192.168.1.20", "o=- 1 1 IN IP4 203.0.113.1");
  body = replace_all(body, "c=IN IP4 192.168.1.20", "c=IN IP4 203.0.113.1");
  body = replace_all(body, "m=audio 4000", "m=audio 31000");
  text = replace_all(text.substr(0, body_at), "Content-Length: " + std::to_string(sdp.size()),
                     "Content-Length: " + std::to_string(body.size())) + body;
  auto check = check_seal(parse_ok(text), kKey);
  EXPECT_NE(find(check, "sdp.o"), nullptr);
  ASSERT_NE(find(check, "sdp.c.0"), nullptr);
  EXPECT_EQ(find(check, "sdp.c.0")->label, "SDP c=");
  EXPECT_EQ(find(check, "sdp.c.0")->sent, "c=IN IP4 192.168.1.20");
  EXPECT_EQ(find(check, "sdp.m.0")->arrived, "m=audio 31000 RTP/AVP 0");
  EXPECT_EQ(find(check, "sdp.rtcp.0"), nullptr);  // left alone, as the kernel's helper does
  EXPECT_NE(find(check, "content-length"), nullptr);
  EXPECT_NE(find(check, "body"), nullptr);
  EXPECT_FALSE(check.auth_changed());
}

TEST(Seal, LongValuesAreCheckedButNotCarried) {
  auto text = replace_all(register_text(), "Call-ID: reg-1@192.168.1.20", "Call-ID: " + std::string(300, 'x'));
  auto changed = replace_all(sealed(text), std::string(300, 'x'), std::string(299, 'x') + "y");
  auto check = check_seal(parse_ok(changed), kKey);
  ASSERT_EQ(check.changes.size(), 1u);
  EXPECT_EQ(check.changes[0].sent, "(not carried)");
  EXPECT_EQ(check.changes[0].arrived, std::string(299, 'x') + "y");
}

TEST(Seal, AnotherKeyOrAnEditedSealDoesNotVerify) {
  auto text = sealed(register_text());
  EXPECT_EQ(check_seal(parse_ok(text), "another key").status, SealCheck::Status::invalid);
  auto edited = text;
  edited[edited.find(";f=ruri:") + 9] ^= 1;
  auto check = check_seal(parse_ok(edited), kKey);
  EXPECT_EQ(check.status, SealCheck::Status::invalid);
  EXPECT_FALSE(check.detail.empty());
  EXPECT_EQ(check_seal(parse_ok(replace_all(text, ";mac=", ";nac=")), kKey).status, SealCheck::Status::invalid);
}

TEST(Seal, NoSealIsAbsent) {
  auto check = check_seal(parse_ok(register_text()), kKey);
  EXPECT_EQ(check.status, SealCheck::Status::absent);
  EXPECT_EQ(check.header, nullptr);
}

TEST(Seal, ProbeMarkIsAuthenticated) {
  auto text = sealed(register_text(), kKey, true);
  EXPECT_TRUE(check_seal(parse_ok(text), kKey).probe);
  auto unmarked = replace_all(text, ";probe=1", "");
  EXPECT_EQ(check_seal(parse_ok(unmarked), kKey).status, SealCheck::Status::invalid);
  // Under another key the mark is still read, so the far side answers "invalid" instead of relaying.
  auto other = check_seal(parse_ok(text), "another key");
  EXPECT_EQ(other.status, SealCheck::Status::invalid);
  EXPECT_TRUE(other.probe);
}

TEST(Seal, FieldLabels) {
  EXPECT_EQ(field_label("ruri"), "Request-URI");
  EXPECT_EQ(field_label("via.0"), "Via");
  EXPECT_EQ(field_label("via.2"), "Via #3");
  EXPECT_EQ(field_label("proxy-authorization.1.nonce"), "Proxy-Authorization #2 nonce=");
  EXPECT_EQ(field_label("sdp.m.1"), "SDP m= #2");
  EXPECT_EQ(field_label("sdp.rtcp.0"), "SDP a=rtcp");
  EXPECT_TRUE(is_auth_field("proxy-authenticate.0.realm"));
  EXPECT_FALSE(is_auth_field("contact.0"));
}

}  // namespace
}  // namespace sw::diag
