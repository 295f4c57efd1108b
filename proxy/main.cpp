// sipwitness: command line, logging and signal wiring. Everything else is a library.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

#include "auth/credentials.hpp"
#include "config/config.hpp"
#include "diag/observer.hpp"
#include "proxy/server.hpp"
#include "proxy/version.hpp"

namespace {

// Writes the diag one-line summary of each message at debug level; the check
// comes first so a quiet proxy never formats them.
class TraceLog : public sw::diag::Observer {
 public:
  explicit TraceLog(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}
  void on_message(const sw::diag::Observed& e) override {
    if (log_->should_log(spdlog::level::debug)) log_->debug("{}", sw::diag::summarize(e));
  }

 private:
  std::shared_ptr<spdlog::logger> log_;
};

std::shared_ptr<const sw::auth::CredentialStore> load_users(const sw::config::Config& cfg) {
  if (cfg.challenge.users.empty()) return nullptr;
  return std::make_shared<const sw::auth::CredentialStore>(sw::config::load_users(cfg.challenge.users),
                                                           cfg.challenge.realm);
}

int run(const std::string& config_path, bool check_only) {
  sw::config::Config cfg;
  std::shared_ptr<const sw::auth::CredentialStore> users;
  try {
    cfg = sw::config::load_file(config_path);
    users = load_users(cfg);
  } catch (const sw::config::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << config_path << ": ok\n";
    return 0;
  }
  auto log = spdlog::stderr_color_mt("sipwitness");
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  log->set_level(spdlog::level::from_str(cfg.log.level));
  log->flush_on(spdlog::level::trace);  // the log is how people watch it: never hold lines back

  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  TraceLog trace(log);
  sw::proxy::Server server(loop, cfg, log, &trace, users);
  int rc = 0;
  if (!server.start()) {
    server.shutdown();
    rc = 1;
  }
  // SIGTERM / SIGINT: close every handle so uv_run returns and we exit 0.
  struct Stopper {
    sw::proxy::Server* server;
    const sw::config::Config* cfg;
    uv_signal_t signals[3];
  } stopper{&server, &cfg, {}};
  if (rc == 0) {
    const int numbers[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; ++i) {
      uv_signal_init(loop, &stopper.signals[i]);
      stopper.signals[i].data = &stopper;
      uv_signal_start(
          &stopper.signals[i],
          [](uv_signal_t* s, int signum) {
            auto* st = static_cast<Stopper*>(s->data);
            spdlog::get("sipwitness")->info("signal {}: stopping", signum);
            st->server->shutdown();
            for (auto& h : st->signals)
              if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&h))) uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
          },
          numbers[i]);
    }
    // SIGHUP: reload the users file; a broken file keeps the running users.
    uv_signal_init(loop, &stopper.signals[2]);
    stopper.signals[2].data = &stopper;
    uv_signal_start(
        &stopper.signals[2],
        [](uv_signal_t* s, int) {
          auto* st = static_cast<Stopper*>(s->data);
          auto logger = spdlog::get("sipwitness");
          if (st->cfg->challenge.users.empty()) return;
          try {
            auto fresh = load_users(*st->cfg);
            logger->info("SIGHUP: reloaded {} ({} users)", st->cfg->challenge.users, fresh->size());
            st->server->reload_users(std::move(fresh));
          } catch (const sw::config::ConfigError& e) {
            logger->error("SIGHUP: kept the running users: {}", e.what());
          }
        },
        SIGHUP);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return rc;
}

// Reads the password from stdin: without echo when it is a terminal, else the first line.
std::optional<std::string> read_password() {
  bool tty = isatty(STDIN_FILENO);
  termios saved{};
  if (tty) {
    std::cerr << "password: " << std::flush;
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string password;
  bool got = static_cast<bool>(std::getline(std::cin, password));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!got) return std::nullopt;
  if (!password.empty() && password.back() == '\r') password.pop_back();
  return password;
}

// Prints a users-file entry with the HA1s, so the password need not be stored.
int ha1(const std::string& user, const std::string& realm, const std::string& algorithm) {
  std::vector<sw::auth::Algorithm> algorithms;
  if (algorithm.empty()) {
    algorithms = {sw::auth::Algorithm::md5, sw::auth::Algorithm::sha256, sw::auth::Algorithm::sha512_256};
  } else {
    auto a = sw::auth::parse_algorithm(algorithm);
    if (!a || sw::auth::is_sess(*a)) {
      std::cerr << "--algorithm: expected MD5, SHA-256 or SHA-512-256\n";
      return 2;
    }
    algorithms = {*a};
  }
  auto password = read_password();
  if (!password || password->empty()) {
    std::cerr << "no password on standard input\n";
    return 2;
  }
  std::cout << "  - { username: \"" << user << "\", realm: \"" << realm << "\", ha1: { ";
  for (std::size_t i = 0; i < algorithms.size(); ++i) {
    std::cout << (i ? ", " : "") << sw::auth::to_string(algorithms[i]) << ": \""
              << sw::auth::compute_ha1(algorithms[i], user, realm, *password) << "\"";
  }
  std::cout << " } }\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sipwitness: a transparent SIP proxy that tells you why SIP authentication fails"};
  app.set_version_flag("--version", std::string("sipwitness ") + sw::proxy::kVersion);
  app.require_subcommand(1);

  std::string config_path;
  bool check_only = false;
  auto* run_cmd = app.add_subcommand("run", "Run the proxy");
  run_cmd->add_option("--config", config_path, "YAML configuration file")->required();
  run_cmd->add_flag("--check", check_only, "Validate the configuration and exit");

  std::string user, realm, algorithm;
  auto* ha1_cmd = app.add_subcommand("ha1", "Print a users-file entry with the HA1s of a password read from stdin");
  ha1_cmd->add_option("--user", user, "Username")->required();
  ha1_cmd->add_option("--realm", realm, "Realm")->required();
  ha1_cmd->add_option("--algorithm", algorithm, "MD5, SHA-256 or SHA-512-256 (default: all three)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*run_cmd) return run(config_path, check_only);
  if (*ha1_cmd) return ha1(user, realm, algorithm);
  return 2;
}
