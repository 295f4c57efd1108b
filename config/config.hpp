#pragma once
// The typed, immutable configuration. Loaded once, validated with every error's
// file:line:column and key path, then handed down as plain structs.
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sw::config {

enum class Transport : std::uint8_t { udp, tcp, tls };

// none: no client certificate asked for; optional: asked for, and one that fails
// verification is refused; require: a phone without a valid one is refused.
enum class VerifyClients : std::uint8_t { none, optional, require };

struct Listen {
  Transport transport = Transport::udp;
  std::string host = "0.0.0.0";
  std::uint16_t port = 5060;
  std::string advertise;  // host[:port] written into Via/Record-Route; "" = derive
  // tls only: PEM certificate (chain) and key, relative to the config's folder.
  std::string cert;
  std::string key;
  std::string ca_file;    // CAs that sign the phones' certificates (verify_clients)
  VerifyClients verify_clients = VerifyClients::none;
};

// How sipwitness talks TLS to the upstream (and to any other TLS next hop).
struct UpstreamTls {
  std::string ca_file;      // "" = the system's CA store
  std::string cert;         // optional client certificate (PEM) ...
  std::string key;          // ... and its key
  std::string server_name;  // SNI and the name checked (RFC 5922); "" = the upstream URI's host
  bool verify = true;       // false: encrypt without checking who answers (lab use only)
};

struct Upstream {
  std::string uri = "sip:127.0.0.1:5070;transport=udp";
  // Parsed from uri:
  Transport transport = Transport::udp;
  std::string host = "127.0.0.1";
  std::uint16_t port = 5070;
  bool port_given = true;       // false: RFC 3263 SRV/NAPTR lookups decide
  bool transport_given = true;  // false: NAPTR may choose (a hostname without port)
  bool sips = false;
  UpstreamTls tls;
  std::chrono::seconds failover_after{2};  // no answer at all from a target this long: try the next
  std::chrono::seconds retry_after{30};    // a target that failed is skipped this long
};

struct Dns {
  std::vector<std::string> servers;  // "ip" or "ip:port"; empty = the system's resolv.conf
};

struct Challenge {
  bool enabled = false;
  std::string realm = "sipwitness";
  std::vector<std::string> methods{"REGISTER", "INVITE"};
  std::chrono::seconds nonce_ttl{300};
  std::vector<std::string> algorithms{"SHA-256", "MD5"};  // offered in this order (RFC 8760)
  std::string users;           // users file, relative paths from the config file's folder
  std::string secret;          // nonce HMAC secret; "" = random at start
  std::uint32_t max_failures = 5;             // wrong answers from one source before 403
  std::uint32_t max_user_failures = 20;       // wrong answers for one username, from any source
  std::chrono::seconds failure_window{60};    // ...within this window
  std::chrono::seconds block_time{60};        // then 403 for this long,
  std::chrono::seconds max_block_time{3600};  // doubled by each next block up to this
  std::chrono::seconds backoff_reset{3600};   // no block for this long after one: back to block_time
  std::chrono::seconds trusted_for{86400};    // a source that authenticated as a user passes its block this long
};

// One entry of a users / known-credentials file.
struct UserRecord {
  std::string username;
  std::string realm;     // "" = the challenge realm
  std::string password;  // "" when only HA1s are given
  std::vector<std::pair<std::string, std::string>> ha1;  // algorithm name ("MD5", "SHA-256", "SHA-512-256") -> hex
};

// Loads a users file (`users: [...]`); throws ConfigError with file:line:column and key path.
std::vector<UserRecord> load_users(const std::string& path);

struct Diag {
  std::string verdict_log = "verdicts.jsonl";
  std::string known_credentials;
  std::chrono::seconds flow_timeout{32};
  bool redact = true;
  std::size_t max_flows = 100000;  // live flows tracked; the least recently active is evicted
  std::string capture;             // pcap file of every message relayed; "" = none
};

enum class LabRole : std::uint8_t { none, inner, outer, both };

struct Lab {
  LabRole role = LabRole::none;  // inner: seals toward the upstream; outer: seals toward the phones
  std::string key_file;          // required with a role; read by load_lab_key
};

inline constexpr std::size_t kMinLabKeyBytes = 16;
inline constexpr std::size_t kMaxLabKeyBytes = 1024;
// The shared lab secret: the file's bytes without trailing white space. Throws
// ConfigError naming the file when it cannot be read or is too short or long.
std::string load_lab_key(const std::string& path);

struct Relay {
  bool record_route = true;   // RFC 3261 16.6 step 4, for dialog-forming requests
  bool add_path = true;       // RFC 3327 Path on REGISTER, so registrars route calls back here
  std::chrono::seconds tcp_idle_timeout{600};
  std::size_t max_tcp_connections = 4096;
  std::size_t max_bindings = 100000;
  std::chrono::seconds drain_timeout{5};  // SIGTERM: how long transactions in flight may take to finish
};

struct Limits {
  std::size_t max_message_bytes = 65535;
  std::size_t max_headers = 128;
  std::size_t max_line_bytes = 8192;
  std::size_t max_pending_requests = 16384;    // requests awaiting a final answer that are followed
  std::uint32_t max_requests_per_source = 2000;  // per second and source IP (not the upstream); 0 = none
  std::uint32_t max_connections_per_source = 256;  // TCP/TLS from one IP; 0 = none
  std::size_t max_connection_buffer = 1 << 20;   // bytes queued toward one connection
};

// The optional Prometheus listener (GET /metrics over HTTP). Off unless listen is set.
struct Metrics {
  std::string listen;  // "ip:port" as written; "" = no listener
  std::string host;    // the IP from listen (IPv6 without brackets)
  std::uint16_t port = 0;
};

struct Log {
  std::string level = "info";  // trace debug info warn error critical off
};

inline constexpr std::uint64_t kMaxWorkers = 64;

struct Config {
  std::string path;  // file it came from ("" for the built-in default)
  // Event loops, each in its own thread; 0 = auto (one per CPU the process may
  // run on). Above 1, each UDP port is shared with SO_REUSEPORT and each worker
  // reaches the upstream from a UDP port of its own (see docs/ARCHITECTURE.md).
  std::size_t workers = 1;
  std::vector<Listen> listen{{Transport::udp, "0.0.0.0", 5060, "", "", "", "", VerifyClients::none},
                             {Transport::tcp, "0.0.0.0", 5060, "", "", "", "", VerifyClients::none}};
  Upstream upstream;
  Dns dns;
  Challenge challenge;
  Diag diag;
  Lab lab;
  Relay relay;
  Limits limits;
  Metrics metrics;
  Log log;
};

// Carries "file:line:column: key.path: message".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Loads and validates a YAML file; throws ConfigError with the location and key path.
Config load_file(const std::string& path);
// Same for YAML text (name is used in error messages).
Config load_string(const std::string& yaml, const std::string& name);

std::string_view to_string(Transport t);
std::optional<Transport> parse_transport(std::string_view text);
// "300s", "5m", "1h", "1500ms" (rounded up to whole seconds), or a plain number of seconds.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace sw::config
