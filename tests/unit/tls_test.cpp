#include "proxy/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

// The TLS engine driven end to end in memory: keys and certificates are made
// here, a client Session and a server Session exchange their output directly.
namespace sw::proxy::tls {
namespace {

struct FreeKey {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct FreeCert {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, FreeKey>;
using Cert = std::unique_ptr<X509, FreeCert>;

Key make_key() { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` with `cn` and `san` ("DNS:a,URI:sip:b,IP:1.2.3.4", ""
// for none), signed by issuer/issuer_key, or self-signed when they are null.
Cert make_cert(EVP_PKEY* key, const std::string& cn, const std::string& san, bool ca = false,
               X509* issuer = nullptr, EVP_PKEY* issuer_key = nullptr) {
  static long serial = 1;
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer ? issuer : cert.get();
  add_ext(cert.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (ca) add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!san.empty()) add_ext(cert.get(), signer, NID_subject_alt_name, san);
  EXPECT_GT(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()), 0);
  return cert;
}

void write_pem(const std::string& path, X509* cert) {
  BIO* b = BIO_new_file(path.c_str(), "w");
  ASSERT_NE(b, nullptr) << path;
  PEM_write_bio_X509(b, cert);
  BIO_free(b);
}

void write_pem(const std::string& path, EVP_PKEY* key) {
  BIO* b = BIO_new_file(path.c_str(), "w");
  ASSERT_NE(b, nullptr) << path;
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  BIO_free(b);
}

// Plaintext each end received while pumping.
struct Received {
  std::string by_client;
  std::string by_server;
};

// Hands each end's output to the other until both are quiet.
void pump(Session& client, Session& server, Received& got) {
  for (int round = 0; round < 50; ++round) {
    std::string c = client.take_output();
    if (!c.empty()) server.receive(c, got.by_server);
    std::string s = server.take_output();
    if (!s.empty()) client.receive(s, got.by_client);
    if (c.empty() && s.empty()) return;
  }
  FAIL() << "the sessions never went quiet";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class TlsSession : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sipwitness-tls-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ca_key_ = make_key();
    ca_ = make_cert(ca_key_.get(), "Test CA", "", true);
    write_pem(path("ca.pem"), ca_.get());
    // The server: named by DNS and as an IP literal, v4 and v6.
    server_key_ = make_key();
    Cert server = make_cert(server_key_.get(), "sip.example.com", "DNS:sip.example.com,IP:127.0.0.1,IP:::1",
                            false, ca_.get(), ca_key_.get());
    write_pem(path("server.pem"), server.get());
    write_pem(path("server.key"), server_key_.get());
    // A phone with a certificate from the CA, and one that made its own.
    Key phone_key = make_key();
    Cert phone = make_cert(phone_key.get(), "phone1", "", false, ca_.get(), ca_key_.get());
    write_pem(path("phone.pem"), phone.get());
    write_pem(path("phone.key"), phone_key.get());
    Key stranger_key = make_key();
    Cert stranger = make_cert(stranger_key.get(), "sip.example.com", "DNS:sip.example.com");
    write_pem(path("stranger.pem"), stranger.get());
    write_pem(path("stranger.key"), stranger_key.get());
    // From the CA, but for another name.
    Key other_key = make_key();
    Cert other = make_cert(other_key.get(), "other.example.com", "DNS:other.example.com", false, ca_.get(),
                           ca_key_.get());
    write_pem(path("other.pem"), other.get());
    write_pem(path("other.key"), other_key.get());
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::shared_ptr<Context> server_ctx(const std::string& leaf = "server",
                                      config::VerifyClients verify = config::VerifyClients::none) {
    std::string error;
    auto ctx = Context::server({path(leaf + ".pem"), path(leaf + ".key"), path("ca.pem"), verify}, &error);
    EXPECT_NE(ctx, nullptr) << error;
    return ctx;
  }
  std::shared_ptr<Context> client_ctx(bool verify = true, const std::string& leaf = "") {
    std::string error;
    ClientSettings s{path("ca.pem"), leaf.empty() ? "" : path(leaf + ".pem"), leaf.empty() ? "" : path(leaf + ".key"),
                     verify};
    auto ctx = Context::client(s, &error);
    EXPECT_NE(ctx, nullptr) << error;
    return ctx;
  }

  std::filesystem::path dir_;
  Key ca_key_;
  Cert ca_;
  Key server_key_;
};

TEST_F(TlsSession, HandshakeCarriesDataBothWaysIncludingDataQueuedEarly) {
  auto server = Session::accept(server_ctx());
  auto client = Session::connect(client_ctx(), "sip.example.com", nullptr);
  ASSERT_TRUE(server && client);
  EXPECT_TRUE(client->send("REGISTER early\r\n"));
  EXPECT_TRUE(server->send("SIP/2.0 early\r\n"));
  EXPECT_FALSE(client->established());
  Received got;
  pump(*client, *server, got);
  ASSERT_TRUE(client->established()) << client->error();
  ASSERT_TRUE(server->established()) << server->error();
  EXPECT_FALSE(client->failed());
  EXPECT_FALSE(server->failed());
  EXPECT_EQ(got.by_server, "REGISTER early\r\n");
  EXPECT_EQ(got.by_client, "SIP/2.0 early\r\n");

  EXPECT_TRUE(client->send("OPTIONS later\r\n"));
  EXPECT_TRUE(server->send("SIP/2.0 200 later\r\n"));
  pump(*client, *server, got);
  EXPECT_EQ(got.by_server, "REGISTER early\r\nOPTIONS later\r\n");
  EXPECT_EQ(got.by_client, "SIP/2.0 early\r\nSIP/2.0 200 later\r\n");

  EXPECT_TRUE(contains(client->describe(), "TLSv1.3")) << client->describe();
  EXPECT_TRUE(contains(server->describe(), "TLSv1.3")) << server->describe();
  EXPECT_TRUE(contains(client->describe(), "peer CN=sip.example.com")) << client->describe();
  EXPECT_FALSE(contains(client->describe(), "resumed"));
  EXPECT_TRUE(client->take_established_event());
  EXPECT_FALSE(client->take_established_event());
  EXPECT_TRUE(server->take_established_event());
  EXPECT_FALSE(server->take_established_event());
  EXPECT_FALSE(client->closed_by_peer());
}

TEST_F(TlsSession, LargeMessageArrivesWhole) {
  auto server = Session::accept(server_ctx());
  auto client = Session::connect(client_ctx(), "sip.example.com", nullptr);
  std::string big(100000, 'x');
  for (std::size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>('a' + i % 26);
  EXPECT_TRUE(client->send(big));
  Received got;
  pump(*client, *server, got);
  ASSERT_TRUE(server->established()) << server->error();
  EXPECT_EQ(got.by_server, big);
}

TEST_F(TlsSession, ServerRefusesTls11) {
  auto ctx = client_ctx();
  SSL_CTX_set_security_level(ctx->native(), 0);  // TLS 1.1 needs SHA-1 signatures
  SSL_CTX_set_min_proto_version(ctx->native(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(ctx->native(), TLS1_1_VERSION);
  auto server = Session::accept(server_ctx());
  auto client = Session::connect(ctx, "sip.example.com", nullptr);
  ASSERT_FALSE(client->failed()) << "the client could not even offer TLS 1.1: " << client->error();
  Received got;
  pump(*client, *server, got);
  EXPECT_FALSE(server->established());
  EXPECT_FALSE(client->established());
  EXPECT_TRUE(server->failed());
  EXPECT_TRUE(contains(server->error(), "unsupported protocol")) << server->error();
  EXPECT_TRUE(client->failed());
}

TEST_F(TlsSession, ClientRefusesCertificateFromUnknownCa) {
  auto server = Session::accept(server_ctx("stranger"));
  auto client = Session::connect(client_ctx(), "sip.example.com", nullptr);
  Received got;
  pump(*client, *server, got);
  EXPECT_FALSE(client->established());
  EXPECT_FALSE(server->established());
  ASSERT_TRUE(client->failed());
  EXPECT_TRUE(contains(client->error(), "certificate verify failed")) << client->error();
  EXPECT_TRUE(contains(client->error(), "self-signed certificate")) << client->error();
  EXPECT_FALSE(contains(client->error(), "does not name")) << client->error();
  EXPECT_TRUE(server->failed());  // the client's alert
}

TEST_F(TlsSession, ClientRefusesCertificateForAnotherName) {
  auto server = Session::accept(server_ctx("other"));
  auto client = Session::connect(client_ctx(), "sip.example.com", nullptr);
  Received got;
  pump(*client, *server, got);
  EXPECT_FALSE(client->established());
  ASSERT_TRUE(client->failed());
  EXPECT_TRUE(contains(client->error(), "does not name sip.example.com")) << client->error();
  EXPECT_TRUE(contains(client->error(), "CN=other.example.com")) << client->error();
}

TEST_F(TlsSession, ClientMatchesNameWithTrailingDotAndOtherCase) {
  auto server = Session::accept(server_ctx());
  auto client = Session::connect(client_ctx(), "SIP.Example.COM.", nullptr);
  Received got;
  pump(*client, *server, got);
  EXPECT_TRUE(client->established()) << client->error();
}

TEST_F(TlsSession, ClientWithoutVerificationAcceptsUnknownCaAndWrongName) {
  for (const std::string leaf : {"stranger", "other"}) {
    SCOPED_TRACE(leaf);
    auto server = Session::accept(server_ctx(leaf));
    auto client = Session::connect(client_ctx(false), "sip.example.com", nullptr);
    EXPECT_TRUE(client->send("hi"));
    Received got;
    pump(*client, *server, got);
    EXPECT_TRUE(client->established()) << client->error();
    EXPECT_TRUE(server->established()) << server->error();
    EXPECT_EQ(got.by_server, "hi");
  }
}

// The server context's servername callback records what the client sent.
struct SniSeen {
  bool called = false;
  std::optional<std::string> name;
};

int record_sni(SSL* ssl, int*, void* arg) {
  auto* seen = static_cast<SniSeen*>(arg);
  seen->called = true;
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  seen->name = name ? std::optional<std::string>(name) : std::nullopt;
  return SSL_TLSEXT_ERR_OK;
}

TEST_F(TlsSession, SniCarriesHostNamesButNotIpLiterals) {
  struct Case {
    std::string peer;
    std::optional<std::string> sni;
  };
  for (const Case& c : {Case{"sip.example.com", "sip.example.com"}, Case{"127.0.0.1", std::nullopt},
                        Case{"::1", std::nullopt}}) {
    SCOPED_TRACE(c.peer);
    auto sctx = server_ctx();
    SniSeen seen;
    SSL_CTX_set_tlsext_servername_callback(sctx->native(), record_sni);
    SSL_CTX_set_tlsext_servername_arg(sctx->native(), &seen);
    auto server = Session::accept(sctx);
    auto client = Session::connect(client_ctx(), c.peer, nullptr);
    Received got;
    pump(*client, *server, got);
    EXPECT_TRUE(client->established()) << client->error();  // the IP SANs match too
    EXPECT_TRUE(seen.called);
    EXPECT_EQ(seen.name, c.sni);
  }
}

TEST_F(TlsSession, OptionalClientVerificationAcceptsClientWithoutCertificate) {
  auto server = Session::accept(server_ctx("server", config::VerifyClients::optional));
  auto client = Session::connect(client_ctx(), "sip.example.com", nullptr);
  EXPECT_TRUE(client->send("REGISTER"));
  Received got;
  pump(*client, *server, got);
  EXPECT_TRUE(server->established()) << server->error();
  EXPECT_TRUE(client->established()) << client->error();
  EXPECT_EQ(got.by_server, "REGISTER");
  EXPECT_FALSE(contains(server->describe(), "peer")) << server->describe();
}

TEST_F(TlsSession, OptionalClientVerificationRefusesCertificateFromAnotherCa) {
  auto server = Session::accept(server_ctx("server", config::VerifyClients::optional));
  auto client = Session::connect(client_ctx(true, "stranger"), "sip.example.com", nullptr);
  EXPECT_TRUE(client->send("REGISTER"));
  Received got;
  pump(*client, *server, got);
  EXPECT_FALSE(server->established());
  ASSERT_TRUE(server->failed());
  EXPECT_TRUE(contains(server->error(), "certificate verify failed")) << server->error();
  EXPECT_TRUE(contains(server->error(), "self-signed certificate")) << server->error();
  EXPECT_EQ(got.by_server, "");
  EXPECT_TRUE(client->failed());  // TLS 1.3: the client learns it from the alert
}

TEST_F(TlsSession, RequiredClientVerificationRefusesClientWithoutCertificate) {
  auto server = Session::accept(server_ctx("server", config::VerifyClients::require));
  auto client = Session::connect(client_ctx(), "sip.example.com", nullptr);
  EXPECT_TRUE(client->send("REGISTER"));
  Received got;
  pump(*client, *server, got);
  EXPECT_FALSE(server->established());
  ASSERT_TRUE(server->failed());
  EXPECT_TRUE(contains(server->error(), "certificate")) << server->error();
  EXPECT_EQ(got.by_server, "");
  EXPECT_TRUE(client->failed());
}

TEST_F(TlsSession, RequiredClientVerificationAcceptsGoodClientCertificate) {
  auto server = Session::accept(server_ctx("server", config::VerifyClients::require));
  auto client = Session::connect(client_ctx(true, "phone"), "sip.example.com", nullptr);
  EXPECT_TRUE(client->send("REGISTER"));
  Received got;
  pump(*client, *server, got);
  ASSERT_TRUE(server->established()) << server->error();
  ASSERT_TRUE(client->established()) << client->error();
  EXPECT_EQ(got.by_server, "REGISTER");
  EXPECT_TRUE(contains(server->describe(), "peer CN=phone1")) << server->describe();
}

// A first connection that exchanged data both ways, so the client holds the
// server's TLS 1.3 tickets (they arrive after the handshake).
std::unique_ptr<Session> first_connection(const std::shared_ptr<Context>& sctx,
                                          const std::shared_ptr<Context>& cctx) {
  auto server = Session::accept(sctx);
  auto client = Session::connect(cctx, "sip.example.com", nullptr);
  EXPECT_TRUE(client->send("REGISTER"));
  Received got;
  pump(*client, *server, got);
  EXPECT_TRUE(server->send("SIP/2.0 200 OK"));
  pump(*client, *server, got);
  EXPECT_EQ(got.by_client, "SIP/2.0 200 OK");
  EXPECT_TRUE(client->established()) << client->error();
  EXPECT_FALSE(contains(client->describe(), "resumed"));
  EXPECT_NE(client->ticket(), nullptr);
  return client;
}

void expect_resumed(const std::shared_ptr<Context>& sctx, const std::shared_ptr<Context>& cctx,
                    const SessionTicket& ticket) {
  auto server = Session::accept(sctx);
  auto client = Session::connect(cctx, "sip.example.com", ticket);
  EXPECT_TRUE(client->send("REGISTER again"));
  Received got;
  pump(*client, *server, got);
  ASSERT_TRUE(client->established()) << client->error();
  EXPECT_EQ(got.by_server, "REGISTER again");
  EXPECT_TRUE(contains(client->describe(), "resumed")) << client->describe();
  EXPECT_TRUE(contains(server->describe(), "resumed")) << server->describe();
}

TEST_F(TlsSession, SecondConnectionResumesWithTicket) {
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  auto first = first_connection(sctx, cctx);
  SessionTicket ticket = first->ticket();
  ASSERT_NE(ticket, nullptr);
  expect_resumed(sctx, cctx, ticket);
}

// What Server::close_connection does: keep the ticket, drop the connection,
// connect again later with the ticket.
TEST_F(TlsSession, TicketStillResumesAfterItsConnectionIsGone) {
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  auto first = first_connection(sctx, cctx);
  SessionTicket ticket = first->ticket();
  ASSERT_NE(ticket, nullptr);
  ASSERT_EQ(SSL_SESSION_is_resumable(ticket.get()), 1);
  first.reset();
  EXPECT_EQ(SSL_SESSION_is_resumable(ticket.get()), 1) << "~Session (SSL_free without shutdown) spoilt the ticket";
  expect_resumed(sctx, cctx, ticket);
}

TEST_F(TlsSession, ServerFailsOnPlainSip) {
  auto server = Session::accept(server_ctx());
  std::string plaintext;
  EXPECT_FALSE(server->receive(
      "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
      plaintext));
  EXPECT_TRUE(server->failed());
  EXPECT_FALSE(server->error().empty());
  EXPECT_FALSE(server->established());
  EXPECT_EQ(plaintext, "");
  EXPECT_FALSE(server->receive("more", plaintext));  // stays failed
}

TEST_F(TlsSession, ContextErrorsNameTheFile) {
  std::string error;
  EXPECT_EQ(Context::server({path("missing.pem"), path("server.key"), "", config::VerifyClients::none}, &error),
            nullptr);
  EXPECT_TRUE(contains(error, path("missing.pem"))) << error;

  error.clear();
  EXPECT_EQ(Context::server({path("server.pem"), path("phone.key"), "", config::VerifyClients::none}, &error),
            nullptr);
  EXPECT_TRUE(contains(error, path("phone.key"))) << error;

  error.clear();
  EXPECT_EQ(Context::server({path("server.pem"), path("server.key"), path("missing-ca.pem"),
                             config::VerifyClients::optional},
                            &error),
            nullptr);
  EXPECT_TRUE(contains(error, path("missing-ca.pem"))) << error;

  error.clear();
  EXPECT_EQ(Context::client({path("missing-ca.pem"), "", "", true}, &error), nullptr);
  EXPECT_TRUE(contains(error, path("missing-ca.pem"))) << error;

  error.clear();
  EXPECT_EQ(Context::client({path("ca.pem"), path("phone.pem"), path("server.key"), true}, &error), nullptr);
  EXPECT_TRUE(contains(error, path("server.key"))) << error;

  // And the good files load, with a summary for the log.
  error.clear();
  auto ok = Context::server({path("server.pem"), path("server.key"), "", config::VerifyClients::none}, &error);
  ASSERT_NE(ok, nullptr) << error;
  EXPECT_TRUE(contains(ok->summary(), "CN=sip.example.com")) << ok->summary();
}

// RFC 5922 section 7 on certificates made in memory.
class TlsNamesDomain : public ::testing::Test {
 protected:
  Cert cert(const std::string& cn, const std::string& san) { return make_cert(key_.get(), cn, san); }
  Key key_ = make_key();
};

TEST_F(TlsNamesDomain, SipUriSanMatchesItsHost) {
  auto c = cert("unrelated", "URI:sip:example.com");
  EXPECT_TRUE(names_domain(c.get(), "example.com"));
  EXPECT_FALSE(names_domain(c.get(), "other.com"));
  EXPECT_FALSE(names_domain(c.get(), "unrelated"));
  auto with_params = cert("unrelated", "URI:sip:example.com;transport=tls");
  EXPECT_TRUE(names_domain(with_params.get(), "example.com"));
  auto other_scheme = cert("unrelated", "URI:http://example.com");
  EXPECT_FALSE(names_domain(other_scheme.get(), "example.com"));
}

TEST_F(TlsNamesDomain, DnsSanIgnoresCaseAndTrailingDot) {
  auto c = cert("unrelated", "DNS:Example.COM");
  EXPECT_TRUE(names_domain(c.get(), "example.com"));
  EXPECT_TRUE(names_domain(c.get(), "EXAMPLE.com."));
  EXPECT_FALSE(names_domain(c.get(), "example.co"));
  EXPECT_FALSE(names_domain(c.get(), "www.example.com"));
  EXPECT_FALSE(names_domain(c.get(), ""));
}

TEST_F(TlsNamesDomain, NoWildcards) {
  auto c = cert("unrelated", "DNS:*.example.com");
  EXPECT_FALSE(names_domain(c.get(), "a.example.com"));
  EXPECT_FALSE(names_domain(c.get(), "example.com"));
}

TEST_F(TlsNamesDomain, CnIgnoredWhenSanPresent) {
  auto c = cert("example.com", "DNS:other.example.com");
  EXPECT_FALSE(names_domain(c.get(), "example.com"));
  EXPECT_TRUE(names_domain(c.get(), "other.example.com"));
  auto ip_only = cert("example.com", "IP:192.0.2.7");
  EXPECT_FALSE(names_domain(ip_only.get(), "example.com"));
}

TEST_F(TlsNamesDomain, CnUsedWithoutSan) {
  auto c = cert("example.com", "");
  EXPECT_TRUE(names_domain(c.get(), "example.com"));
  EXPECT_TRUE(names_domain(c.get(), "Example.Com."));
  EXPECT_FALSE(names_domain(c.get(), "other.com"));
}

TEST_F(TlsNamesDomain, IpLiteralMatchesIpSan) {
  auto c = cert("192.0.2.9", "IP:192.0.2.7,IP:2001:db8::1,DNS:example.com");
  EXPECT_TRUE(names_domain(c.get(), "192.0.2.7"));
  EXPECT_FALSE(names_domain(c.get(), "192.0.2.8"));
  EXPECT_FALSE(names_domain(c.get(), "192.0.2.9"));  // not the CN
  EXPECT_TRUE(names_domain(c.get(), "[2001:db8::1]"));
  EXPECT_TRUE(names_domain(c.get(), "2001:db8::1"));
  EXPECT_TRUE(names_domain(c.get(), "[2001:DB8:0::1]"));
  EXPECT_FALSE(names_domain(c.get(), "[2001:db8::2]"));
  EXPECT_TRUE(names_domain(c.get(), "example.com"));
}

TEST_F(TlsNamesDomain, NullCertificateNamesNothing) { EXPECT_FALSE(names_domain(nullptr, "example.com")); }

}  // namespace
}  // namespace sw::proxy::tls
