#include "config.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <array>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "proxy/sip/uri.hpp"
#include "proxy/sip/text.hpp"

namespace sw::config {
namespace {

// Walks the YAML tree keeping the key path and the file name for error messages.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& path, const std::string& msg) const {
    auto mark = node.Mark();
    std::string where = file_;
    if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    throw ConfigError(where + ": " + (path.empty() ? "" : path + ": ") + msg);
  }

  // Rejects keys outside `allowed` (the schema is closed: typos must not pass silently).
  void check_keys(const YAML::Node& map, const std::string& path, std::initializer_list<const char*> allowed) const {
    if (!map.IsMap()) fail(map, path, "expected a mapping");
    for (auto it = map.begin(); it != map.end(); ++it) {
      auto key = it->first.as<std::string>();
      bool known = false;
      for (const char* a : allowed) known = known || key == a;
      if (!known) fail(it->first, join(path, key), "unknown key");
    }
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  std::string str(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) fail(n, path, "expected a string");
    return n.as<std::string>();
  }

  bool boolean(const YAML::Node& n, const std::string& path) const {
    bool v{};
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) fail(n, path, "expected true or false");
    return v;
  }

  std::uint64_t number(const YAML::Node& n, const std::string& path, std::uint64_t lo, std::uint64_t hi) const {
    auto text = n.IsScalar() ? n.Scalar() : std::string{};
    auto v = sip::parse_uint<std::uint64_t>(text);
    if (!v || *v < lo || *v > hi)
      fail(n, path, "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return *v;
  }

  std::chrono::seconds duration(const YAML::Node& n, const std::string& path) const {
    auto v = n.IsScalar() ? parse_duration(n.Scalar()) : std::nullopt;
    if (!v) fail(n, path, "expected a duration such as 32s, 5m or 1h");
    return *v;
  }

  std::vector<std::string> strings(const YAML::Node& n, const std::string& path) const {
    if (!n.IsSequence()) fail(n, path, "expected a list");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n.size(); ++i) out.push_back(str(n[i], path + "[" + std::to_string(i) + "]"));
    return out;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

Listen read_listen(const Reader& r, const YAML::Node& n, const std::string& path) {
  r.check_keys(n, path, {"transport", "host", "port", "advertise", "cert", "key", "ca_file", "verify_clients"});
  Listen l;
  if (n["transport"]) {
    auto t = parse_transport(r.str(n["transport"], path + ".transport"));
    if (!t) r.fail(n["transport"], path + ".transport", "expected udp, tcp or tls");
    l.transport = *t;
  }
  if (n["host"]) l.host = r.str(n["host"], path + ".host");
  l.port = l.transport == Transport::tls ? 5061 : 5060;
  if (n["port"]) l.port = static_cast<std::uint16_t>(r.number(n["port"], path + ".port", 0, 65535));
  if (n["advertise"]) {
    l.advertise = r.str(n["advertise"], path + ".advertise");
    if (!sip::parse_host_port(l.advertise)) r.fail(n["advertise"], path + ".advertise", "expected host or host:port");
  }
  if (n["cert"]) l.cert = r.str(n["cert"], path + ".cert");
  if (n["key"]) l.key = r.str(n["key"], path + ".key");
  if (n["ca_file"]) l.ca_file = r.str(n["ca_file"], path + ".ca_file");
  if (n["verify_clients"]) {
    auto v = r.str(n["verify_clients"], path + ".verify_clients");
    if (v == "none") l.verify_clients = VerifyClients::none;
    else if (v == "optional") l.verify_clients = VerifyClients::optional;
    else if (v == "require") l.verify_clients = VerifyClients::require;
    else r.fail(n["verify_clients"], path + ".verify_clients", "expected none, optional or require");
  }
  const bool tls = l.transport == Transport::tls;
  for (const char* key : {"cert", "key", "ca_file", "verify_clients"})
    if (!tls && n[key]) r.fail(n[key], path + "." + key, "only for transport: tls");
  if (tls && l.cert.empty()) r.fail(n, path + ".cert", "a TLS listener needs a certificate (PEM)");
  if (tls && l.key.empty()) r.fail(n, path + ".key", "a TLS listener needs the certificate's private key (PEM)");
  if (l.verify_clients != VerifyClients::none && l.ca_file.empty())
    r.fail(n["verify_clients"], path + ".ca_file", "verify_clients needs the CA file that signs the phones' certificates");
  return l;
}

// "[::1]" -> "::1": an IPv6 reference without its brackets.
std::string_view unbracketed(std::string_view host) {
  return host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
}

bool is_ip_literal(std::string_view host) {
  std::string text(unbracketed(host));
  std::array<unsigned char, 16> ip{};
  return inet_pton(AF_INET, text.c_str(), ip.data()) == 1 || inet_pton(AF_INET6, text.c_str(), ip.data()) == 1;
}

void read_upstream_tls(const Reader& r, const YAML::Node& n, UpstreamTls& t) {
  r.check_keys(n, "upstream.tls", {"ca_file", "cert", "key", "server_name", "verify"});
  if (n["ca_file"]) t.ca_file = r.str(n["ca_file"], "upstream.tls.ca_file");
  if (n["cert"]) t.cert = r.str(n["cert"], "upstream.tls.cert");
  if (n["key"]) t.key = r.str(n["key"], "upstream.tls.key");
  if (n["server_name"]) t.server_name = r.str(n["server_name"], "upstream.tls.server_name");
  if (n["verify"]) t.verify = r.boolean(n["verify"], "upstream.tls.verify");
  if (t.cert.empty() != t.key.empty())
    r.fail(n, t.cert.empty() ? "upstream.tls.cert" : "upstream.tls.key", "a client certificate needs both cert and key");
}

Upstream read_upstream(const Reader& r, const YAML::Node& n) {
  r.check_keys(n, "upstream", {"uri", "tls", "failover_after", "retry_after"});
  Upstream u;
  if (n["tls"]) read_upstream_tls(r, n["tls"], u.tls);
  if (n["failover_after"]) u.failover_after = r.duration(n["failover_after"], "upstream.failover_after");
  if (n["retry_after"]) u.retry_after = r.duration(n["retry_after"], "upstream.retry_after");
  if (u.failover_after.count() == 0) r.fail(n["failover_after"], "upstream.failover_after", "must be at least 1s");
  if (!n["uri"]) return u;
  u.uri = r.str(n["uri"], "upstream.uri");
  auto parsed = sip::parse_uri(u.uri);
  if (!parsed || !parsed->is_sip() || !parsed->user.empty())
    r.fail(n["uri"], "upstream.uri", "expected sip:host[:port][;transport=udp|tcp|tls] or sips:host[:port]");
  auto transport = parsed->transport();
  u.sips = parsed->is_sips();
  u.transport = u.sips ? Transport::tls : Transport::udp;
  u.transport_given = !transport.empty();
  if (!transport.empty()) {
    auto t = parse_transport(transport);
    if (!t) r.fail(n["uri"], "upstream.uri", "unknown transport parameter");
    if (u.sips && *t != Transport::tls) r.fail(n["uri"], "upstream.uri", "a sips: upstream is reached over TLS only");
    u.transport = *t;
  }
  u.host = std::string(unbracketed(parsed->host));
  u.port_given = parsed->port != 0;
  u.port = parsed->port ? parsed->port : (u.transport == Transport::tls ? 5061 : 5060);
  return u;
}

void read_dns(const Reader& r, const YAML::Node& n, Dns& d) {
  r.check_keys(n, "dns", {"servers"});
  if (!n["servers"]) return;
  d.servers = r.strings(n["servers"], "dns.servers");
  for (std::size_t i = 0; i < d.servers.size(); ++i) {
    if (is_ip_literal(d.servers[i])) continue;  // a bare IPv6 address has colons of its own
    auto hp = sip::parse_host_port(d.servers[i]);
    if (!hp || !is_ip_literal(hp->host)) r.fail(n["servers"][i], "dns.servers[" + std::to_string(i) + "]", "expected an IP address with an optional :port");
  }
}

void read_challenge(const Reader& r, const YAML::Node& n, Challenge& c) {
  r.check_keys(n, "challenge", {"enabled", "realm", "methods", "nonce_ttl", "algorithms", "users", "secret",
                                "max_failures", "max_user_failures", "failure_window", "block_time",
                                "max_block_time", "backoff_reset", "trusted_for"});
  if (n["enabled"]) c.enabled = r.boolean(n["enabled"], "challenge.enabled");
  if (n["realm"]) c.realm = r.str(n["realm"], "challenge.realm");
  if (n["methods"]) c.methods = r.strings(n["methods"], "challenge.methods");
  if (n["nonce_ttl"]) c.nonce_ttl = r.duration(n["nonce_ttl"], "challenge.nonce_ttl");
  if (n["algorithms"]) {
    c.algorithms = r.strings(n["algorithms"], "challenge.algorithms");
    for (std::size_t i = 0; i < c.algorithms.size(); ++i) {
      const auto& a = c.algorithms[i];
      if (a != "MD5" && a != "SHA-256" && a != "SHA-512-256")
        r.fail(n["algorithms"][i], "challenge.algorithms[" + std::to_string(i) + "]",
               "expected MD5, SHA-256 or SHA-512-256");
    }
  }
  if (n["users"]) c.users = r.str(n["users"], "challenge.users");
  if (n["secret"]) c.secret = r.str(n["secret"], "challenge.secret");
  if (n["max_failures"])
    c.max_failures = static_cast<std::uint32_t>(r.number(n["max_failures"], "challenge.max_failures", 1, 1000000));
  if (n["failure_window"]) c.failure_window = r.duration(n["failure_window"], "challenge.failure_window");
  if (n["max_user_failures"])
    c.max_user_failures =
        static_cast<std::uint32_t>(r.number(n["max_user_failures"], "challenge.max_user_failures", 1, 1000000));
  if (n["block_time"]) c.block_time = r.duration(n["block_time"], "challenge.block_time");
  if (n["max_block_time"]) c.max_block_time = r.duration(n["max_block_time"], "challenge.max_block_time");
  if (n["backoff_reset"]) c.backoff_reset = r.duration(n["backoff_reset"], "challenge.backoff_reset");
  if (n["trusted_for"]) c.trusted_for = r.duration(n["trusted_for"], "challenge.trusted_for");
  if (c.block_time.count() == 0) r.fail(n["block_time"], "challenge.block_time", "must be at least 1s");
  if (c.max_block_time < c.block_time) {
    const char* key = n["max_block_time"] ? "max_block_time" : "block_time";
    r.fail(n[key], std::string("challenge.") + key,
           "challenge.max_block_time (" + std::to_string(c.max_block_time.count()) +
               "s) must be at least challenge.block_time (" + std::to_string(c.block_time.count()) + "s)");
  }
  if (c.methods.empty()) r.fail(n["methods"], "challenge.methods", "expected at least one method");
  if (c.algorithms.empty()) r.fail(n["algorithms"], "challenge.algorithms", "expected at least one algorithm");
  if (c.nonce_ttl.count() == 0) r.fail(n["nonce_ttl"], "challenge.nonce_ttl", "must be at least 1s");
  if (c.enabled && c.users.empty()) r.fail(n, "challenge.users", "a users file is required when challenge.enabled is true");
}

void read_diag(const Reader& r, const YAML::Node& n, Diag& d) {
  r.check_keys(n, "diag", {"verdict_log", "known_credentials", "flow_timeout", "redact", "max_flows", "capture"});
  if (n["verdict_log"]) d.verdict_log = r.str(n["verdict_log"], "diag.verdict_log");
  if (n["known_credentials"]) d.known_credentials = r.str(n["known_credentials"], "diag.known_credentials");
  if (n["flow_timeout"]) d.flow_timeout = r.duration(n["flow_timeout"], "diag.flow_timeout");
  if (n["redact"]) d.redact = r.boolean(n["redact"], "diag.redact");
  if (n["max_flows"]) d.max_flows = r.number(n["max_flows"], "diag.max_flows", 1, 10000000);
  if (n["capture"]) d.capture = r.str(n["capture"], "diag.capture");
}

void read_lab(const Reader& r, const YAML::Node& n, Lab& l) {
  r.check_keys(n, "lab", {"role", "key_file"});
  if (n["role"]) {
    auto role = r.str(n["role"], "lab.role");
    if (role == "inner") l.role = LabRole::inner;
    else if (role == "outer") l.role = LabRole::outer;
    else if (role == "both")
      r.fail(n["role"], "lab.role",
             "both is not available in this version: run an inner and an outer sipwitness sharing lab.key_file");
    else r.fail(n["role"], "lab.role", "expected inner, outer or both");
  }
  if (n["key_file"]) l.key_file = r.str(n["key_file"], "lab.key_file");
  if (l.role != LabRole::none && l.key_file.empty())
    r.fail(n, "lab.key_file", "required with lab.role: both sides seal and check with this shared secret");
}

void read_relay(const Reader& r, const YAML::Node& n, Relay& rl) {
  r.check_keys(n, "relay",
               {"record_route", "add_path", "tcp_idle_timeout", "max_tcp_connections", "max_bindings", "drain_timeout"});
  if (n["record_route"]) rl.record_route = r.boolean(n["record_route"], "relay.record_route");
  if (n["add_path"]) rl.add_path = r.boolean(n["add_path"], "relay.add_path");
  if (n["tcp_idle_timeout"]) rl.tcp_idle_timeout = r.duration(n["tcp_idle_timeout"], "relay.tcp_idle_timeout");
  if (n["max_tcp_connections"])
    rl.max_tcp_connections = r.number(n["max_tcp_connections"], "relay.max_tcp_connections", 1, 1000000);
  if (n["max_bindings"]) rl.max_bindings = r.number(n["max_bindings"], "relay.max_bindings", 1, 10000000);
  if (n["drain_timeout"]) rl.drain_timeout = r.duration(n["drain_timeout"], "relay.drain_timeout");
}

void read_limits(const Reader& r, const YAML::Node& n, Limits& l) {
  r.check_keys(n, "limits", {"max_message_bytes", "max_headers", "max_line_bytes", "max_pending_requests",
                             "max_requests_per_source", "max_connections_per_source", "max_connection_buffer"});
  // 65535 is the largest UDP payload; streams are held to the same bound.
  if (n["max_message_bytes"])
    l.max_message_bytes = r.number(n["max_message_bytes"], "limits.max_message_bytes", 512, 65535);
  if (n["max_headers"]) l.max_headers = r.number(n["max_headers"], "limits.max_headers", 8, 1024);
  if (n["max_line_bytes"]) l.max_line_bytes = r.number(n["max_line_bytes"], "limits.max_line_bytes", 128, 65535);
  if (n["max_pending_requests"])
    l.max_pending_requests = r.number(n["max_pending_requests"], "limits.max_pending_requests", 1, 10000000);
  if (n["max_requests_per_source"])
    l.max_requests_per_source = static_cast<std::uint32_t>(
        r.number(n["max_requests_per_source"], "limits.max_requests_per_source", 0, 10000000));
  if (n["max_connections_per_source"])
    l.max_connections_per_source = static_cast<std::uint32_t>(
        r.number(n["max_connections_per_source"], "limits.max_connections_per_source", 0, 1000000));
  if (n["max_connection_buffer"])
    l.max_connection_buffer = r.number(n["max_connection_buffer"], "limits.max_connection_buffer", 65536, 1 << 30);
}

void read_metrics(const Reader& r, const YAML::Node& n, Metrics& m) {
  r.check_keys(n, "metrics", {"listen"});
  if (!n["listen"]) return;
  m.listen = r.str(n["listen"], "metrics.listen");
  auto hp = sip::parse_host_port(m.listen);
  if (!hp || hp->port == 0 || !is_ip_literal(hp->host))
    r.fail(n["listen"], "metrics.listen", "expected an IP address and a port, such as 127.0.0.1:9090 or [::1]:9090");
  m.host = std::string(unbracketed(hp->host));
  m.port = hp->port;
}

Config read(const YAML::Node& root, const Reader& r) {
  Config c;
  c.path = r.file();
  if (!root || root.IsNull()) return c;
  r.check_keys(root, "",
               {"workers", "listen", "upstream", "dns", "challenge", "diag", "lab", "relay", "limits", "metrics", "log"});
  if (root["workers"]) {
    const auto& w = root["workers"];
    c.workers = w.IsScalar() && w.Scalar() == "auto" ? 0 : r.number(w, "workers", 1, kMaxWorkers);
  }
  if (root["listen"]) {
    const auto& l = root["listen"];
    if (!l.IsSequence() || l.size() == 0) r.fail(l, "listen", "expected a non-empty list of listeners");
    c.listen.clear();
    for (std::size_t i = 0; i < l.size(); ++i) c.listen.push_back(read_listen(r, l[i], "listen[" + std::to_string(i) + "]"));
  }
  if (root["upstream"]) c.upstream = read_upstream(r, root["upstream"]);
  if (root["dns"]) read_dns(r, root["dns"], c.dns);
  if (root["challenge"]) read_challenge(r, root["challenge"], c.challenge);
  if (root["diag"]) read_diag(r, root["diag"], c.diag);
  if (root["lab"]) read_lab(r, root["lab"], c.lab);
  if (root["relay"]) read_relay(r, root["relay"], c.relay);
  if (root["limits"]) read_limits(r, root["limits"], c.limits);
  if (root["metrics"]) read_metrics(r, root["metrics"], c.metrics);
  if (root["log"]) {
    r.check_keys(root["log"], "log", {"level"});
    if (root["log"]["level"]) {
      c.log.level = r.str(root["log"]["level"], "log.level");
      static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
      if (!levels.count(c.log.level))
        r.fail(root["log"]["level"], "log.level", "expected trace, debug, info, warn, error, critical or off");
    }
  }
  if (c.workers != 1) {
    // What a worker keeps per flow must come back to it: calls to a registered
    // phone find its worker through Path; lab seals and the capture file have
    // one writer.
    const char* conflict = c.lab.role != LabRole::none ? "lab.role"
                           : !c.diag.capture.empty()   ? "diag.capture"
                           : !c.relay.add_path         ? "relay.add_path: false"
                                                       : nullptr;
    if (conflict) r.fail(root["workers"], "workers", std::string("more than one worker does not work with ") + conflict);
  }
  // Files named in the config are relative to the config file's folder.
  auto relative = [&](std::string& path) {
    if (path.empty() || path.front() == '/' || r.file().find('/') == std::string::npos) return;
    path = r.file().substr(0, r.file().rfind('/') + 1) + path;
  };
  relative(c.challenge.users);
  relative(c.diag.known_credentials);
  if (c.diag.verdict_log != "-") relative(c.diag.verdict_log);
  relative(c.diag.capture);
  relative(c.lab.key_file);
  for (auto& l : c.listen) {
    relative(l.cert);
    relative(l.key);
    relative(l.ca_file);
  }
  relative(c.upstream.tls.ca_file);
  relative(c.upstream.tls.cert);
  relative(c.upstream.tls.key);
  // A hostname without port or transport lets NAPTR pick among our transports.
  const bool naptr_picks = !c.upstream.transport_given && !c.upstream.port_given && !c.upstream.sips &&
                           !is_ip_literal(c.upstream.host);
  bool has_upstream_transport = naptr_picks;
  for (const auto& l : c.listen) has_upstream_transport = has_upstream_transport || l.transport == c.upstream.transport;
  if (!has_upstream_transport)
    r.fail(root["upstream"] ? root["upstream"] : root, "upstream.uri",
           "no listener with the upstream's transport (" + std::string(to_string(c.upstream.transport)) + ")");
  return c;
}

// Parses YAML and reads it into T; every yaml-cpp exception (syntax, or a
// conversion while reading) becomes a ConfigError naming the file and position.
template <class T, class Read>
T load_yaml(const std::function<YAML::Node()>& parse, const std::string& name, Read&& read) {
  YAML::Node root;
  try {
    root = parse();
  } catch (const YAML::BadFile&) {
    throw ConfigError(name + ": cannot read file");
  } catch (const YAML::Exception& e) {
    std::string where = name;
    if (!e.mark.is_null()) where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    throw ConfigError(where + ": " + e.msg);
  }
  try {
    return read(root, Reader(name));
  } catch (const YAML::Exception& e) {
    throw ConfigError(name + ": " + e.msg);
  }
}

std::vector<UserRecord> read_users(const YAML::Node& root, const Reader& r) {
  std::vector<UserRecord> users;
  if (!root || root.IsNull()) return users;
  r.check_keys(root, "", {"users"});
  const auto& list = root["users"];
  if (!list || !list.IsSequence()) r.fail(list ? list : root, "users", "expected a list of users");
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto path_i = "users[" + std::to_string(i) + "]";
    const auto& n = list[i];
    r.check_keys(n, path_i, {"username", "realm", "password", "ha1"});
    UserRecord u;
    if (!n["username"]) r.fail(n, path_i + ".username", "required");
    u.username = r.str(n["username"], path_i + ".username");
    if (u.username.empty()) r.fail(n["username"], path_i + ".username", "must not be empty");
    if (n["realm"]) u.realm = r.str(n["realm"], path_i + ".realm");
    if (n["password"]) u.password = r.str(n["password"], path_i + ".password");
    if (n["ha1"]) {
      const auto& h = n["ha1"];
      r.check_keys(h, path_i + ".ha1", {"MD5", "SHA-256", "SHA-512-256"});
      for (auto it = h.begin(); it != h.end(); ++it) {
        auto alg = it->first.as<std::string>();
        auto hex = r.str(it->second, path_i + ".ha1." + alg);
        std::size_t want = alg == "MD5" ? 32 : 64;
        bool is_hex = hex.size() == want && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
        if (!is_hex) r.fail(it->second, path_i + ".ha1." + alg, "expected " + std::to_string(want) + " hex digits");
        for (auto& ch : hex) ch = sip::ascii_lower(ch);
        u.ha1.emplace_back(alg, hex);
      }
    }
    if (u.password.empty() && u.ha1.empty()) r.fail(n, path_i, "needs a password or an ha1");
    users.push_back(std::move(u));
  }
  return users;
}

}  // namespace

std::vector<UserRecord> load_users(const std::string& path) {
  return load_yaml<std::vector<UserRecord>>([&] { return YAML::LoadFile(path); }, path, read_users);
}

std::string load_lab_key(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw ConfigError(path + ": lab.key_file: cannot read: " + std::strerror(errno));
  std::string key;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && key.size() <= kMaxLabKeyBytes) key.append(buf, n);
  std::fclose(f);
  while (!key.empty() && sip::is_ws(key.back())) key.pop_back();  // an editor's final newline is not part of it
  if (key.size() < kMinLabKeyBytes)
    throw ConfigError(path + ": lab.key_file: the key must be at least " + std::to_string(kMinLabKeyBytes) +
                      " bytes (for example: openssl rand -hex 32 > lab.key)");
  if (key.size() > kMaxLabKeyBytes)
    throw ConfigError(path + ": lab.key_file: the key must be at most " + std::to_string(kMaxLabKeyBytes) + " bytes");
  return key;
}

Config load_file(const std::string& path) {
  return load_yaml<Config>([&] { return YAML::LoadFile(path); }, path, read);
}

Config load_string(const std::string& yaml, const std::string& name) {
  return load_yaml<Config>([&] { return YAML::Load(yaml); }, name, read);
}

std::string_view to_string(Transport t) {
  switch (t) {
    case Transport::udp: return "udp";
    case Transport::tcp: return "tcp";
    case Transport::tls: return "tls";
  }
  return "udp";
}

std::optional<Transport> parse_transport(std::string_view text) {
  if (sip::iequals(text, "udp")) return Transport::udp;
  if (sip::iequals(text, "tcp")) return Transport::tcp;
  if (sip::iequals(text, "tls")) return Transport::tls;
  return std::nullopt;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto n = sip::parse_uint<std::uint64_t>(text.substr(0, digits));
  if (!n || *n > 10'000'000) return std::nullopt;
  auto unit = text.substr(digits);
  if (unit.empty() || unit == "s") return std::chrono::seconds(*n);
  if (unit == "ms") return std::chrono::seconds((*n + 999) / 1000);
  if (unit == "m") return std::chrono::seconds(*n * 60);
  if (unit == "h") return std::chrono::seconds(*n * 3600);
  return std::nullopt;
}

}  // namespace sw::config
