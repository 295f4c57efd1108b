#include "config/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace sw::config {
namespace {

TEST(Config, ExampleConfigsLoad) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SIPWITNESS_CONFIG_DIR "/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    if (entry.path().filename().string().starts_with("users"))
      EXPECT_FALSE(load_users(entry.path().string()).empty());
    else
      EXPECT_NO_THROW(load_file(entry.path().string()));
    ++loaded;
  }
  EXPECT_GE(loaded, 3);
}

TEST(Config, DefaultsWhenEmpty) {
  auto c = load_string("", "empty.yaml");
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].port, 5060);
  EXPECT_EQ(c.diag.flow_timeout, std::chrono::seconds(32));
  EXPECT_TRUE(c.diag.redact);
  EXPECT_FALSE(c.challenge.enabled);
  EXPECT_EQ(c.log.level, "info");
}

TEST(Config, ParsesValues) {
  auto c = load_string(R"(listen:
  - { transport: tcp, host: "::1", port: 0 }
  - { transport: udp, host: 127.0.0.1, port: 5080, advertise: "sip.example.com:5080" }
upstream: { uri: "sip:[2001:db8::1]:5070;transport=TCP" }
diag: { flow_timeout: 2m, redact: false }
relay: { tcp_idle_timeout: 1500ms, max_tcp_connections: 10 }
log: { level: debug }
)", "values.yaml");
  EXPECT_EQ(c.listen[0].transport, Transport::tcp);
  EXPECT_EQ(c.listen[0].port, 0);
  EXPECT_EQ(c.listen[1].advertise, "sip.example.com:5080");
  EXPECT_EQ(c.upstream.transport, Transport::tcp);
  EXPECT_EQ(c.upstream.host, "2001:db8::1");
  EXPECT_EQ(c.upstream.port, 5070);
  EXPECT_EQ(c.diag.flow_timeout, std::chrono::seconds(120));
  EXPECT_EQ(c.relay.tcp_idle_timeout, std::chrono::seconds(2));
  EXPECT_EQ(c.relay.max_tcp_connections, 10u);
}

TEST(Config, Workers) {
  EXPECT_EQ(load_string("", "empty.yaml").workers, 1u);
  EXPECT_EQ(load_string("workers: 4\n", "four.yaml").workers, 4u);
  EXPECT_EQ(load_string("workers: auto\n", "auto.yaml").workers, 0u);  // resolved at start
  EXPECT_EQ(load_string("workers: 1\nlab: { role: outer, key_file: lab.key }\n", "one.yaml").workers, 1u);
}

TEST(Config, BruteForceGuard) {
  auto d = load_string("", "empty.yaml").challenge;
  EXPECT_EQ(d.max_failures, 5u);
  EXPECT_EQ(d.max_user_failures, 20u);
  EXPECT_EQ(d.block_time, std::chrono::seconds(60));
  EXPECT_EQ(d.max_block_time, std::chrono::hours(1));
  EXPECT_EQ(d.backoff_reset, std::chrono::hours(1));
  EXPECT_EQ(d.trusted_for, std::chrono::hours(24));
  auto c = load_string("challenge: { max_user_failures: 7, block_time: 2s, max_block_time: 8s, backoff_reset: 1500ms, "
                       "trusted_for: 0s }\n", "guard.yaml").challenge;
  EXPECT_EQ(c.max_user_failures, 7u);
  EXPECT_EQ(c.block_time, std::chrono::seconds(2));
  EXPECT_EQ(c.max_block_time, std::chrono::seconds(8));
  EXPECT_EQ(c.backoff_reset, std::chrono::seconds(2));
  EXPECT_EQ(c.trusted_for, std::chrono::seconds(0));
}

TEST(Config, TlsListenersUpstreamAndDns) {
  auto c = load_string(R"(
listen:
  - { transport: udp, port: 5060 }
  - { transport: tls, port: 5061, cert: certs/server.pem, key: /etc/k.pem, ca_file: phones.pem, verify_clients: optional }
upstream:
  uri: "sips:provider.example"
  tls: { ca_file: ca.pem, cert: client.pem, key: client.key, server_name: sip.provider.example }
  failover_after: 3s
  retry_after: 1m
dns: { servers: ["127.0.0.1:5353", "::1"] }
)", "conf/values.yaml");
  EXPECT_EQ(c.listen[1].transport, Transport::tls);
  EXPECT_EQ(c.listen[1].cert, "conf/certs/server.pem");  // relative to the config's folder
  EXPECT_EQ(c.listen[1].key, "/etc/k.pem");
  EXPECT_EQ(c.listen[1].ca_file, "conf/phones.pem");
  EXPECT_EQ(c.listen[1].verify_clients, VerifyClients::optional);
  EXPECT_EQ(c.upstream.transport, Transport::tls);
  EXPECT_TRUE(c.upstream.sips);
  EXPECT_FALSE(c.upstream.port_given);
  EXPECT_FALSE(c.upstream.transport_given);
  EXPECT_EQ(c.upstream.port, 5061);
  EXPECT_EQ(c.upstream.tls.ca_file, "conf/ca.pem");
  EXPECT_EQ(c.upstream.tls.cert, "conf/client.pem");
  EXPECT_EQ(c.upstream.tls.server_name, "sip.provider.example");
  EXPECT_TRUE(c.upstream.tls.verify);
  EXPECT_EQ(c.upstream.failover_after, std::chrono::seconds(3));
  EXPECT_EQ(c.upstream.retry_after, std::chrono::seconds(60));
  EXPECT_EQ(c.dns.servers, (std::vector<std::string>{"127.0.0.1:5353", "::1"}));

  // A domain without port or transport: NAPTR picks among the listeners' transports.
  auto naptr = load_string("upstream: { uri: \"sip:provider.example\" }\nlisten: [{ transport: tcp }]\n", "n.yaml");
  EXPECT_FALSE(naptr.upstream.port_given);
  EXPECT_FALSE(naptr.upstream.transport_given);
}

TEST(Config, ErrorsNameFileLineColumnAndKeyPath) {
  struct Row {
    const char* yaml;
    const char* expected;  // substring of the message
  };
  const Row rows[] = {
      {"listen:\n  - { transport: udp, host: 1.2.3.4, port: 5060, bogus: 1 }\n", "bad.yaml:2:50: listen[0].bogus: unknown key"},
      {"listen:\n  - { transport: udp, port: 99999 }\n", "bad.yaml:2:29: listen[0].port: expected an integer from 0 to 65535"},
      {"listen:\n  - { transport: sctp }\n", "listen[0].transport: expected udp, tcp or tls"},
      {"upstream: { uri: \"http://x\" }\n", "bad.yaml:1:18: upstream.uri: expected sip:host"},
      {"upstream: { uri: \"sip:x;transport=tcp\" }\nlisten: [{ transport: udp }]\n", "upstream.uri: no listener with the upstream's transport (tcp)"},
      {"diag: { flow_timeout: soon }\n", "bad.yaml:1:23: diag.flow_timeout: expected a duration"},
      {"diag: { redact: maybe }\n", "diag.redact: expected true or false"},
      {"log: { level: loud }\n", "log.level: expected trace"},
      {"lgo: { level: info }\n", "bad.yaml:1:1: lgo: unknown key"},
      {"challenge: { algorithms: [MD5, SHA-1] }\n", "challenge.algorithms[1]: expected MD5, SHA-256 or SHA-512-256"},
      {"listen: [{ transport: udp, host: 1.2.3.4, port: 1 }\n", "bad.yaml:2:1: "},  // YAML syntax error
      {"challenge: { enabled: true }\n", "challenge.users: a users file is required when challenge.enabled is true"},
      {"challenge: { max_failures: 0 }\n", "challenge.max_failures: expected an integer from 1"},
      {"challenge: { max_user_failures: 0 }\n", "bad.yaml:1:33: challenge.max_user_failures: expected an integer from 1"},
      {"challenge: { block_time: 0s }\n", "bad.yaml:1:26: challenge.block_time: must be at least 1s"},
      {"challenge: { block_time: 5m, max_block_time: 1m }\n",
       "bad.yaml:1:46: challenge.max_block_time: challenge.max_block_time (60s) must be at least challenge.block_time (300s)"},
      {"challenge: { block_time: 2h }\n", "bad.yaml:1:26: challenge.block_time: challenge.max_block_time (3600s) must be"},
      {"challenge: { backoff_reset: never }\n", "challenge.backoff_reset: expected a duration"},
      {"challenge: { trusted: 1h }\n", "bad.yaml:1:14: challenge.trusted: unknown key"},
      {"listen: [{ transport: tls }]\n", "bad.yaml:1:10: listen[0].cert: a TLS listener needs a certificate"},
      {"listen: [{ transport: tls, cert: c.pem }]\n", "listen[0].key: a TLS listener needs the certificate's private key"},
      {"listen: [{ transport: udp, cert: c.pem }]\n", "bad.yaml:1:34: listen[0].cert: only for transport: tls"},
      {"listen: [{ transport: tls, cert: c, key: k, verify_clients: always }]\n",
       "listen[0].verify_clients: expected none, optional or require"},
      {"listen: [{ transport: tls, cert: c, key: k, verify_clients: require }]\n",
       "listen[0].ca_file: verify_clients needs the CA file"},
      {"upstream: { uri: \"sips:x;transport=udp\" }\n", "upstream.uri: a sips: upstream is reached over TLS only"},
      {"upstream: { uri: \"sips:x\" }\n", "upstream.uri: no listener with the upstream's transport (tls)"},
      {"upstream: { tls: { cert: c.pem } }\n", "upstream.tls.key: a client certificate needs both cert and key"},
      {"upstream: { tls: { verify: sometimes } }\n", "upstream.tls.verify: expected true or false"},
      {"upstream: { failover_after: 0s }\n", "upstream.failover_after: must be at least 1s"},
      {"dns: { servers: [dns.example] }\n", "bad.yaml:1:18: dns.servers[0]: expected an IP address"},
      {"dns: { resolver: x }\n", "dns.resolver: unknown key"},
      {"lab: { role: inner }\n", "bad.yaml:1:6: lab.key_file: required with lab.role"},
      {"lab: { role: middle, key_file: k }\n", "lab.role: expected inner, outer or both"},
      {"lab: { role: both, key_file: k }\n", "lab.role: both is not available in this version"},
      {"lab: { role: outer, key: k }\n", "lab.key: unknown key"},
      {"metrics: { listen: \"localhost:9090\" }\n", "bad.yaml:1:20: metrics.listen: expected an IP address and a port"},
      {"metrics: { listen: \"127.0.0.1\" }\n", "metrics.listen: expected an IP address and a port"},
      {"metrics: { listen: \"127.0.0.1:99999\" }\n", "metrics.listen: expected an IP address and a port"},
      {"metrics: { port: 9090 }\n", "bad.yaml:1:12: metrics.port: unknown key"},
      {"workers: 0\n", "bad.yaml:1:10: workers: expected an integer from 1 to 64"},
      {"workers: 65\n", "workers: expected an integer from 1 to 64"},
      {"workers: many\n", "workers: expected an integer from 1 to 64"},
      {"workers: 2\nlab: { role: inner, key_file: lab.key }\n",
       "bad.yaml:1:10: workers: more than one worker does not work with lab.role"},
      {"workers: auto\ndiag: { capture: x.pcap }\n", "workers: more than one worker does not work with diag.capture"},
      {"workers: 2\nrelay: { add_path: false }\n", "workers: more than one worker does not work with relay.add_path"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.yaml);
    try {
      load_string(row.yaml, "bad.yaml");
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(row.expected), std::string::npos) << e.what();
    }
  }
}

std::string write_file(const std::filesystem::path& dir, const std::string& name, const std::string& text) {
  auto path = (dir / name).string();
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return path;
}

TEST(Config, LabRoleAndKey) {
  auto c = load_string("lab: { role: outer, key_file: lab.key }\n", "conf/lab.yaml");
  EXPECT_EQ(c.lab.role, LabRole::outer);
  EXPECT_EQ(c.lab.key_file, "conf/lab.key");  // beside the config file
  EXPECT_EQ(load_string("", "x.yaml").lab.role, LabRole::none);

  auto dir = std::filesystem::temp_directory_path() / ("sipwitness-lab-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) { return write_file(dir, name, text); };
  EXPECT_EQ(load_lab_key(write("good.key", "0123456789abcdef0123\n\n")), "0123456789abcdef0123");
  auto expect_error = [&](const std::string& path, const std::string& part) {
    try {
      load_lab_key(path);
      ADD_FAILURE() << path << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  expect_error(write("short.key", "tooshort\n"), "at least 16 bytes");
  expect_error(write("long.key", std::string(2000, 'k')), "at most 1024 bytes");
  expect_error((dir / "missing.key").string(), "cannot read");
  std::filesystem::remove_all(dir);
}

TEST(Config, UsersFile) {
  auto dir = std::filesystem::temp_directory_path() / ("sipwitness-users-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) { return write_file(dir, name, text); };
  auto good = write("good.yaml", R"(users:
  - { username: "1001", password: "secret1001" }
  - { username: "1002", realm: acme.test, ha1: { MD5: "0123456789ABCDEF0123456789abcdef" } }
)");
  auto users = load_users(good);
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].password, "secret1001");
  EXPECT_EQ(users[1].realm, "acme.test");
  ASSERT_EQ(users[1].ha1.size(), 1u);
  EXPECT_EQ(users[1].ha1[0].second, "0123456789abcdef0123456789abcdef");  // normalised to lower case

  struct Row {
    const char* text;
    const char* expected;
  };
  const Row rows[] = {
      {"users:\n  - { username: \"1\" }\n", ":2:5: users[0]: needs a password or an ha1"},
      {"users:\n  - { username: \"1\", ha1: { MD5: \"abc\" } }\n", "users[0].ha1.MD5: expected 32 hex digits"},
      {"users:\n  - { username: \"1\", ha1: { SHA-1: \"abc\" } }\n", "users[0].ha1.SHA-1: unknown key"},
      {"users:\n  - { password: \"x\" }\n", "users[0].username: required"},
      {"people: []\n", ":1:1: people: unknown key"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.text);
    try {
      load_users(write("bad.yaml", row.text));
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(row.expected), std::string::npos) << e.what();
    }
  }
  // The users path is taken relative to the config file.
  auto cfg = write("sw.yaml", "challenge: { enabled: true, users: good.yaml }\n");
  EXPECT_EQ(load_file(cfg).challenge.users, (dir / "good.yaml").string());
  std::filesystem::remove_all(dir);
}

TEST(Config, CaptureIsOffByDefaultAndRelativeToTheConfigFile) {
  EXPECT_EQ(load_string("", "empty.yaml").diag.capture, "");
  EXPECT_EQ(load_string("diag: { capture: /captures/sw.pcap }\n", "conf/sw.yaml").diag.capture, "/captures/sw.pcap");
  EXPECT_EQ(load_string("diag: { capture: relayed.pcap }\n", "conf/sw.yaml").diag.capture, "conf/relayed.pcap");
  EXPECT_EQ(load_string("diag: { capture: relayed.pcap }\n", "sw.yaml").diag.capture, "relayed.pcap");
  try {
    load_string("diag: { capture: [a, b] }\n", "bad.yaml");
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml:1:18: diag.capture: expected a string"), std::string::npos) << e.what();
  }
}

TEST(Config, MetricsListenerIsOffByDefault) {
  EXPECT_EQ(load_string("", "empty.yaml").metrics.listen, "");
  auto v4 = load_string("metrics: { listen: \"127.0.0.1:9090\" }\n", "m.yaml").metrics;
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 9090);
  auto v6 = load_string("metrics: { listen: \"[::1]:9464\" }\n", "m.yaml").metrics;
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 9464);
}

TEST(Config, MissingFileIsAClearError) {
  try {
    load_file("/nonexistent/sipwitness.yaml");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/sipwitness.yaml: cannot read file");
  }
}

TEST(Config, Durations) {
  EXPECT_EQ(parse_duration("300s"), std::chrono::seconds(300));
  EXPECT_EQ(parse_duration("32"), std::chrono::seconds(32));
  EXPECT_EQ(parse_duration("5m"), std::chrono::seconds(300));
  EXPECT_EQ(parse_duration("1h"), std::chrono::seconds(3600));
  EXPECT_EQ(parse_duration("1ms"), std::chrono::seconds(1));
  EXPECT_FALSE(parse_duration("").has_value());
  EXPECT_FALSE(parse_duration("5 m").has_value());
  EXPECT_FALSE(parse_duration("-5s").has_value());
  EXPECT_FALSE(parse_duration("5d").has_value());
}

}  // namespace
}  // namespace sw::config
