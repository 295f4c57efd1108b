#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>

#include "proxy/address.hpp"
#include "proxy/sip/text.hpp"

namespace sw::proxy::tls {
namespace {

// The reasons queued by OpenSSL for the failed call, oldest first, e.g.
// "certificate verify failed". Clears the queue.
std::string openssl_reasons() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    std::string text = reason ? reason : "error " + std::to_string(ERR_GET_REASON(e));
    if (out.find(text) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "unknown TLS error" : out;
}

std::string common_name(X509* cert) {
  auto* subject = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx < 0) return {};
  auto* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

std::string certificate_summary(X509* cert) {
  if (!cert) return "no certificate";
  std::string out = "CN=" + common_name(cert);
  BIO* b = BIO_new(BIO_s_mem());
  if (b && ASN1_TIME_print(b, X509_get0_notAfter(cert)) == 1) {
    char* text = nullptr;
    auto n = BIO_get_mem_data(b, &text);
    out += ", valid until " + std::string(text, static_cast<std::size_t>(n));
  }
  BIO_free(b);
  return out;
}

// The host of a sip: URI in a certificate ("sip:example.com", RFC 5922 7.1).
std::string_view sip_uri_host(std::string_view uri) {
  if (uri.size() < 4 || !sip::iequals(uri.substr(0, 4), "sip:")) return {};
  auto host = uri.substr(4);
  return host.substr(0, host.find_first_of(":;?"));
}

bool load_own_certificate(SSL_CTX* ctx, const std::string& cert, const std::string& key, std::string* error) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    *error = cert + ": cannot load the certificate chain: " + openssl_reasons();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    *error = key + ": cannot load the private key: " + openssl_reasons();
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    *error = key + ": the key does not belong to the certificate in " + cert;
    ERR_clear_error();
    return false;
  }
  return true;
}

}  // namespace

int verify_peer(int ok, X509_STORE_CTX* store);
int on_new_ticket(SSL* ssl, SSL_SESSION* session);

Context::~Context() { SSL_CTX_free(ctx_); }

std::shared_ptr<Context> Context::server(const ServerSettings& s, std::string* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    *error = "cannot create a TLS context: " + openssl_reasons();
    return nullptr;
  }
  std::shared_ptr<Context> out(new Context(ctx, s.verify_clients != config::VerifyClients::none));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (!load_own_certificate(ctx, s.cert, s.key, error)) return nullptr;
  if (out->verify_) {
    if (SSL_CTX_load_verify_locations(ctx, s.ca_file.c_str(), nullptr) != 1) {
      *error = s.ca_file + ": cannot load the CA file: " + openssl_reasons();
      return nullptr;
    }
    if (auto* names = SSL_load_client_CA_file(s.ca_file.c_str())) SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (s.verify_clients == config::VerifyClients::require) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  // Server-side session cache and tickets (OpenSSL's defaults) need an id context
  // once client certificates are involved.
  static constexpr unsigned char kIdContext[] = "sipwitness";
  SSL_CTX_set_session_id_context(ctx, kIdContext, sizeof kIdContext - 1);
  out->summary_ = certificate_summary(SSL_CTX_get0_certificate(ctx));
  return out;
}

std::shared_ptr<Context> Context::client(const ClientSettings& s, std::string* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    *error = "cannot create a TLS context: " + openssl_reasons();
    return nullptr;
  }
  std::shared_ptr<Context> out(new Context(ctx, s.verify));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (s.verify) {
    bool loaded = s.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) == 1
                                    : SSL_CTX_load_verify_locations(ctx, s.ca_file.c_str(), nullptr) == 1;
    if (!loaded) {
      *error = (s.ca_file.empty() ? std::string("the system CA store") : s.ca_file) +
               ": cannot load the CA certificates: " + openssl_reasons();
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_peer);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!s.cert.empty() && !load_own_certificate(ctx, s.cert, s.key, error)) return nullptr;
  // Tickets are handed to the Session (and from there to the next connection to
  // the same peer), not kept in OpenSSL's cache.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_ticket);
  out->summary_ = s.cert.empty() ? "no client certificate" : certificate_summary(SSL_CTX_get0_certificate(ctx));
  return out;
}

// Chain verification passed so far; at the leaf, add the RFC 5922 name check.
int verify_peer(int ok, X509_STORE_CTX* store) {
  if (!ok || X509_STORE_CTX_get_error_depth(store) != 0) return ok;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* session = ssl ? static_cast<Session*>(SSL_get_app_data(ssl)) : nullptr;
  if (!session || session->peer_name_.empty()) return ok;
  X509* leaf = X509_STORE_CTX_get_current_cert(store);
  if (names_domain(leaf, session->peer_name_)) return 1;
  session->name_mismatch_ = "the certificate (" + certificate_summary(leaf) + ") does not name " +
                            session->peer_name_ + " (RFC 5922: subjectAltName sip: URI or DNS name, no wildcards)";
  X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
  return 0;
}

int on_new_ticket(SSL* ssl, SSL_SESSION* ticket) {
  auto* session = static_cast<Session*>(SSL_get_app_data(ssl));
  if (!session) return 0;
  session->ticket_ = SessionTicket(ticket, SSL_SESSION_free);
  return 1;  // we hold the reference now
}

std::unique_ptr<Session> Session::accept(std::shared_ptr<Context> ctx) {
  SSL* ssl = SSL_new(ctx->native());
  if (!ssl) return nullptr;
  std::unique_ptr<Session> s(new Session(std::move(ctx), ssl));
  SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_app_data(ssl, s.get());
  SSL_set_accept_state(ssl);
  return s;
}

std::unique_ptr<Session> Session::connect(std::shared_ptr<Context> ctx, std::string peer_name, SessionTicket resume) {
  SSL* ssl = SSL_new(ctx->native());
  if (!ssl) return nullptr;
  std::unique_ptr<Session> s(new Session(std::move(ctx), ssl));
  if (!peer_name.empty() && peer_name.back() == '.') peer_name.pop_back();
  if (peer_name.size() > 2 && peer_name.front() == '[') peer_name = peer_name.substr(1, peer_name.size() - 2);
  s->peer_name_ = std::move(peer_name);
  SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_app_data(ssl, s.get());
  SSL_set_connect_state(ssl);
  // RFC 6066: SNI carries host names only.
  if (!s->peer_name_.empty() && !Address::from_ip(s->peer_name_, 0)) SSL_set_tlsext_host_name(ssl, s->peer_name_.c_str());
  if (resume) SSL_set_session(ssl, resume.get());
  s->step();  // the ClientHello
  return s;
}

Session::~Session() {
  // SSL_free of a session never shut down marks its SSL_SESSION not resumable,
  // and under TLS 1.3 that is the very ticket handed out for the next connection.
  if (established_ && !failed()) SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_SENT_SHUTDOWN);
  SSL_free(ssl_);
}

void Session::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
}

bool Session::step() {
  if (established_) return true;
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (r != 1) {
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    std::string why = e == SSL_ERROR_SSL ? openssl_reasons() : "handshake error " + std::to_string(e);
    if (!name_mismatch_.empty()) {
      why += ": " + name_mismatch_;
    } else if (long v = SSL_get_verify_result(ssl_); v != X509_V_OK) {
      why += ": " + std::string(X509_verify_cert_error_string(v));
    }
    fail(std::move(why));
    return false;
  }
  established_ = established_event_ = true;
  if (!pending_plaintext_.empty()) {
    auto held = std::move(pending_plaintext_);
    pending_plaintext_.clear();
    return send(held);
  }
  return true;
}

bool Session::receive(std::string_view ciphertext, std::string& plaintext) {
  if (failed()) return false;
  if (!ciphertext.empty() && BIO_write(SSL_get_rbio(ssl_), ciphertext.data(), static_cast<int>(ciphertext.size())) <= 0) {
    fail("cannot buffer the received bytes");
    return false;
  }
  if (!step()) return false;
  if (!established_) return true;
  std::array<char, 16384> buf;
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()));
    if (n > 0) {
      plaintext.append(buf.data(), static_cast<std::size_t>(n));
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    if (e == SSL_ERROR_ZERO_RETURN) {
      closed_by_peer_ = true;
      return true;
    }
    fail(e == SSL_ERROR_SSL ? openssl_reasons() : "read error " + std::to_string(e));
    return false;
  }
}

bool Session::send(std::string_view plaintext) {
  if (failed()) return false;
  if (!established_) {
    pending_plaintext_.append(plaintext);
    return true;
  }
  while (!plaintext.empty()) {
    ERR_clear_error();
    // Memory BIOs grow as needed, so a write completes whole or fails.
    int n = SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));
    if (n <= 0) {
      fail("write failed: " + openssl_reasons());
      return false;
    }
    plaintext.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string Session::take_output() {
  BIO* out = SSL_get_wbio(ssl_);
  std::string bytes(BIO_ctrl_pending(out), '\0');
  if (!bytes.empty()) {
    int n = BIO_read(out, bytes.data(), static_cast<int>(bytes.size()));
    bytes.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  return bytes;
}

bool Session::take_established_event() {
  bool event = established_event_;
  established_event_ = false;
  return event;
}

std::string Session::describe() const {
  std::string out = std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
  if (X509* peer = SSL_get0_peer_certificate(ssl_)) out += ", peer " + certificate_summary(peer);
  if (SSL_session_reused(ssl_)) out += ", resumed";
  return out;
}

std::optional<Contexts> load_contexts(const config::Config& cfg, std::string* error) {
  Contexts out;
  out.listen.resize(cfg.listen.size());
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    const auto& l = cfg.listen[i];
    if (l.transport != config::Transport::tls) continue;
    out.listen[i] = Context::server({l.cert, l.key, l.ca_file, l.verify_clients}, error);
    if (!out.listen[i]) {
      *error = "listen[" + std::to_string(i) + "]: " + *error;
      return std::nullopt;
    }
    if (!out.client) {
      const auto& t = cfg.upstream.tls;
      out.client = Context::client({t.ca_file, t.cert, t.key, t.verify}, error);
      if (!out.client) {
        *error = "upstream.tls: " + *error;
        return std::nullopt;
      }
    }
  }
  return out;
}

bool names_domain(X509* cert, std::string_view domain) {
  if (!cert || domain.empty()) return false;
  std::string name(domain);
  if (name.size() > 2 && name.front() == '[') name = name.substr(1, name.size() - 2);
  if (Address::from_ip(name, 0)) return X509_check_ip_asc(cert, name.c_str(), 0) == 1;
  if (name.back() == '.') name.pop_back();
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names) {
    bool match = false;
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && !match; ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
      if (g->type != GEN_DNS && g->type != GEN_URI) continue;
      const ASN1_STRING* s = g->type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
      std::string_view value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                             static_cast<std::size_t>(ASN1_STRING_length(s)));
      match = sip::iequals(g->type == GEN_DNS ? value : sip_uri_host(value), name);
    }
    GENERAL_NAMES_free(names);
    return match;  // RFC 5922 7.1: with a subjectAltName, the CN is never used
  }
  return sip::iequals(common_name(cert), name);
}

}  // namespace sw::proxy::tls
