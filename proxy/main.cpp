// sipwitness: command line, logging and signal wiring. Everything else is a library.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <csignal>
#include <iostream>

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

int run(const std::string& config_path, bool check_only) {
  sw::config::Config cfg;
  try {
    cfg = sw::config::load_file(config_path);
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
  sw::proxy::Server server(loop, cfg, log, &trace);
  int rc = 0;
  if (!server.start()) {
    server.shutdown();
    rc = 1;
  }
  // SIGTERM / SIGINT: close every handle so uv_run returns and we exit 0.
  struct Stopper {
    sw::proxy::Server* server;
    uv_signal_t signals[2];
  } stopper{&server, {}};
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
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return rc;
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*run_cmd) return run(config_path, check_only);
  return 2;
}
