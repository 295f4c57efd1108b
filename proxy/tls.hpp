#pragma once
// TLS for SIP connections on OpenSSL 3, without sockets: a Session turns the
// ciphertext a connection reads into plaintext and plaintext into ciphertext to
// write (memory BIOs), so the event loop never blocks on a handshake and tests
// can run both ends in memory.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

using SSL_CTX = struct ssl_ctx_st;
using SSL = struct ssl_st;
using SSL_SESSION = struct ssl_session_st;
using X509 = struct x509_st;
using X509_STORE_CTX = struct x509_store_ctx_st;

namespace sw::proxy::tls {

struct ServerSettings {
  std::string cert;  // PEM chain: the leaf first
  std::string key;
  std::string ca_file;  // for verify_clients
  config::VerifyClients verify_clients = config::VerifyClients::none;
};

struct ClientSettings {
  std::string ca_file;  // "" = the system's CA store
  std::string cert;     // optional client certificate
  std::string key;
  bool verify = true;
};

// A loaded SSL_CTX (TLS 1.2 at least). Sessions keep their context alive, so a
// reload replaces the context without disturbing open connections.
class Context {
 public:
  // nullptr with *error saying which file and why.
  static std::shared_ptr<Context> server(const ServerSettings& s, std::string* error);
  static std::shared_ptr<Context> client(const ClientSettings& s, std::string* error);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  SSL_CTX* native() const { return ctx_; }
  bool verifies_peer() const { return verify_; }
  // "CN=..., expires 2027-01-01": for the log when a certificate is loaded.
  const std::string& summary() const { return summary_; }

 private:
  Context(SSL_CTX* ctx, bool verify) : ctx_(ctx), verify_(verify) {}
  SSL_CTX* ctx_;
  bool verify_;
  std::string summary_;
};

using SessionTicket = std::shared_ptr<SSL_SESSION>;

class Session {
 public:
  // Server side: the phone connected to a TLS listener.
  static std::unique_ptr<Session> accept(std::shared_ptr<Context> ctx);
  // Client side: `peer_name` is sent as SNI (unless an IP literal) and checked
  // against the certificate by RFC 5922 rules; `resume` is a ticket from an
  // earlier connection to the same peer (may be null).
  static std::unique_ptr<Session> connect(std::shared_ptr<Context> ctx, std::string peer_name, SessionTicket resume);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Ciphertext read from the socket; decrypted bytes are appended to
  // `plaintext`. False once the session failed (see error()).
  bool receive(std::string_view ciphertext, std::string& plaintext);
  // Plaintext to send; held until the handshake is done.
  bool send(std::string_view plaintext);
  // Ciphertext to hand to the socket (handshake records, data, alerts).
  std::string take_output();

  bool established() const { return established_; }
  // True once, when the handshake has just completed (for a log line).
  bool take_established_event();
  bool failed() const { return !error_.empty(); }
  bool closed_by_peer() const { return closed_by_peer_; }
  const std::string& error() const { return error_; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384, peer CN=phone1, resumed"
  std::string describe() const;
  // The newest resumption ticket the server gave us (client side), or null.
  SessionTicket ticket() const { return ticket_; }

 private:
  Session(std::shared_ptr<Context> ctx, SSL* ssl) : ctx_(std::move(ctx)), ssl_(ssl) {}
  bool step();  // handshake progress or reads; false on failure
  void fail(std::string why);
  friend int on_new_ticket(SSL* ssl, SSL_SESSION* session);
  friend int verify_peer(int ok, X509_STORE_CTX* store);

  std::shared_ptr<Context> ctx_;
  SSL* ssl_;
  std::string peer_name_;
  std::string pending_plaintext_;
  std::string error_;
  std::string name_mismatch_;  // set by the verify callback
  SessionTicket ticket_;
  bool established_ = false;
  bool established_event_ = false;
  bool closed_by_peer_ = false;
};

// Every TLS context a config asks for: one per TLS listener (by listen index,
// null for the others) and the client side (null without a TLS listener).
struct Contexts {
  std::vector<std::shared_ptr<Context>> listen;
  std::shared_ptr<Context> client;
};
// nullopt with *error naming the config key and the file that failed.
std::optional<Contexts> load_contexts(const config::Config& cfg, std::string* error);

// RFC 5922 section 7: whether a certificate names `domain`. With a
// subjectAltName, only its sip: URIs (host part) and dNSName entries count, the
// CN never does; without one, the CN. No wildcards. An IP literal matches an
// iPAddress entry.
bool names_domain(X509* cert, std::string_view domain);

}  // namespace sw::proxy::tls
