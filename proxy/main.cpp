// sipwitness: command line, logging and signal wiring. Everything else is a library.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <termios.h>
#include <unistd.h>

#include <sched.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "auth/credentials.hpp"
#include "auth/mac.hpp"
#include "config/config.hpp"
#include "diag/alg_report.hpp"
#include "diag/capture/analysis.hpp"
#include "diag/capture/reader.hpp"
#include "diag/capture/report.hpp"
#include "diag/flow_tracker.hpp"
#include "diag/observer.hpp"
#include "proxy/capture_writer.hpp"
#include "proxy/metrics.hpp"
#include "proxy/metrics_http.hpp"
#include "proxy/tls.hpp"
#include "proxy/probe.hpp"
#include "proxy/server.hpp"
#include "proxy/sip/uri.hpp"
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
  bool wants_relayed_copies() const override { return log_->should_log(spdlog::level::debug); }

 private:
  std::shared_ptr<spdlog::logger> log_;
};

// The users of sipwitness's own challenges, and what the diagnosis may use to be
// certain: those users plus diag.known_credentials. Throws ConfigError.
struct Stores {
  std::shared_ptr<const sw::auth::CredentialStore> users;
  std::shared_ptr<const sw::auth::CredentialStore> known;
};

Stores load_stores(const sw::config::Config& cfg) {
  Stores stores;
  std::vector<sw::config::UserRecord> known;
  if (!cfg.challenge.users.empty()) {
    auto own = sw::config::load_users(cfg.challenge.users);
    stores.users = std::make_shared<const sw::auth::CredentialStore>(own, cfg.challenge.realm);
    for (auto& u : own) {
      if (u.realm.empty()) u.realm = cfg.challenge.realm;
      known.push_back(std::move(u));
    }
  }
  if (!cfg.diag.known_credentials.empty()) {
    auto lab = sw::config::load_users(cfg.diag.known_credentials);
    known.insert(known.end(), lab.begin(), lab.end());
  }
  if (!known.empty()) stores.known = std::make_shared<const sw::auth::CredentialStore>(known, "");
  return stores;
}

// The verdict log: one JSON object per line. Each worker gathers its lines and
// hands them over whole, at most kVerdictFlushMs after the first of them (or
// once 64 KiB wait): a reader (or a crash) never sees half a line, lines of two
// workers never mix, and a busy proxy does not pay a write per flow.
constexpr std::uint64_t kVerdictFlushMs = 100;
constexpr std::size_t kVerdictBufferBytes = 64 * 1024;

class VerdictFile {
 public:
  explicit VerdictFile(const std::string& path)
      : file_(path == "-" ? stdout : std::fopen(path.c_str(), "a")), owned_(path != "-") {}
  VerdictFile(const VerdictFile&) = delete;
  VerdictFile& operator=(const VerdictFile&) = delete;
  ~VerdictFile() {
    if (file_ && owned_) std::fclose(file_);
  }
  bool ok() const { return file_ != nullptr; }
  void write(const std::string& lines) {
    std::lock_guard lock(mutex_);
    std::fwrite(lines.data(), 1, lines.size(), file_);
    std::fflush(file_);
  }

 private:
  std::FILE* file_;
  bool owned_;
  std::mutex mutex_;
};

// One worker's lines on their way to the file.
class VerdictLog {
 public:
  explicit VerdictLog(VerdictFile& file) : file_(file) {}
  ~VerdictLog() { flush(); }
  // Flushes on the loop's clock from now on (before that: at every line).
  void attach(uv_loop_t* loop) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    attached_ = true;
  }
  // Stops the timer; lines written after this are flushed at once.
  void detach() {
    if (!attached_) return;
    flush();
    attached_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  }
  void write(const sw::diag::Verdict& v) {
    sw::diag::append_json_line(pending_, v);
    pending_ += '\n';
    if (!attached_ || pending_.size() >= kVerdictBufferBytes) flush();
    else if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)))
      uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<VerdictLog*>(t->data)->flush(); }, kVerdictFlushMs, 0);
  }
  void flush() {
    if (pending_.empty()) return;
    file_.write(pending_);
    pending_.clear();
  }

 private:
  VerdictFile& file_;
  std::string pending_;
  uv_timer_t timer_{};
  bool attached_ = false;
};

// The CPUs this process may run on (workers: auto).
std::size_t usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<std::size_t>(std::max(1, CPU_COUNT(&set)));
}

// One event loop with its own Server and flow tracker: the kernel sends one
// phone's datagrams to one worker, and the worker's own port brings the
// upstream's answers back to it, so a flow's state never leaves its worker.
// Worker 0 runs on the main thread's loop, next to the signals and /metrics;
// the others run their loops in threads of their own and take work from the
// main thread through post().
class Worker {
 public:
  Worker(uv_loop_t* loop, const sw::config::Config& cfg, const Stores& stores,
         std::shared_ptr<spdlog::logger> log, VerdictFile& verdict_file, std::vector<sw::diag::Observer*> extra,
         sw::proxy::CaptureWriter* capture, std::string lab_key, sw::proxy::WorkerPlace place)
      : loop_(loop),
        log_(log),
        verdict_log_(verdict_file),
        tracker_(tracking(cfg, stores),
                 [this](const sw::diag::Verdict& v) {
                   verdicts_.count(v);
                   verdict_log_.write(v);
                   if (log_->should_log(spdlog::level::info)) log_->info("{}", sw::diag::to_human_line(v));
                 }),
        trace_(log),
        capture_(capture) {
    std::vector<sw::diag::Observer*> observers{&trace_, &tracker_};
    observers.insert(observers.end(), extra.begin(), extra.end());
    server_ = std::make_unique<sw::proxy::Server>(loop_, cfg, log_, observers, stores.users, std::move(lab_key),
                                                  std::move(place));
    verdict_log_.attach(loop_);
    uv_async_init(loop_, &wake_, [](uv_async_t* a) { static_cast<Worker*>(a->data)->run_posted(); });
    wake_.data = this;
    // Flows end on silence too (the client gave up): look once a second. The
    // capture reaches its file on the same beat.
    uv_timer_init(loop_, &tick_timer_);
    tick_timer_.data = this;
    uv_timer_start(&tick_timer_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->tick(); }, 1000, 1000);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  sw::proxy::Server& server() { return *server_; }
  sw::diag::FlowTracker& tracker() { return tracker_; }

  // Runs work on this worker's loop, from any thread; false once it stopped.
  bool post(std::function<void()> work) {
    std::lock_guard lock(mutex_);
    if (stopped_) return false;
    posted_.push_back(std::move(work));
    uv_async_send(&wake_);
    return true;
  }

  // On the worker's loop: closes every handle (its loop then ends); flows
  // still open get their verdict now, so the log loses nothing.
  void stop() {
    server_->shutdown();
    tracker_.finish(std::chrono::system_clock::now());
    verdict_log_.detach();
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), nullptr);
    std::lock_guard lock(mutex_);
    stopped_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
  }

  // On the worker's loop: its part of a metrics scrape.
  void snapshot(sw::proxy::Snapshot& s) const {
    server_->snapshot(s);
    s.verdicts = verdicts_;
    s.flows = tracker_.live_flows();
    s.relay.limit(sw::proxy::Limit::max_flows) = tracker_.evictions();
  }

  void run_in_thread() {
    thread_ = std::thread([this] { uv_run(loop_, UV_RUN_DEFAULT); });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  static sw::diag::TrackerSettings tracking(const sw::config::Config& cfg, const Stores& stores) {
    sw::diag::TrackerSettings t;
    t.flow_timeout = cfg.diag.flow_timeout;
    t.max_flows = cfg.diag.max_flows;
    t.redact = cfg.diag.redact;
    t.known = stores.known;
    return t;
  }
  void run_posted() {
    std::vector<std::function<void()>> work;
    {
      std::lock_guard lock(mutex_);
      work.swap(posted_);
    }
    for (auto& w : work) w();
  }
  void tick() {
    tracker_.tick(std::chrono::system_clock::now());
    if (capture_) capture_->flush();
    if (tracker_.evictions() != evictions_) {
      log_->warn("diag: {} flows dropped without a verdict, diag.max_flows reached ({} live)",
                 tracker_.evictions() - evictions_, tracker_.live_flows());
      evictions_ = tracker_.evictions();
    }
  }

  uv_loop_t* loop_;
  std::shared_ptr<spdlog::logger> log_;
  VerdictLog verdict_log_;
  sw::proxy::VerdictCounts verdicts_;
  sw::diag::FlowTracker tracker_;
  TraceLog trace_;
  sw::proxy::CaptureWriter* capture_;  // worker 0's, when diag.capture is set
  std::unique_ptr<sw::proxy::Server> server_;
  uv_timer_t tick_timer_{};
  std::uint64_t evictions_ = 0;
  uv_async_t wake_{};
  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;
  bool stopped_ = false;
  std::thread thread_;
};

// "workers: 2 (udp 127.0.0.1:5060 shared; own udp ports 40001, 40002)"
std::string describe_workers(const std::vector<std::unique_ptr<Worker>>& workers,
                             const std::vector<sw::proxy::Address>& shared, const sw::config::Config& cfg) {
  std::string text = "workers: " + std::to_string(workers.size()) + " (";
  const char* sep = "";
  for (std::size_t i = 0; i < shared.size(); ++i) {
    if (cfg.listen[i].transport != sw::proxy::Transport::udp) continue;
    text += sep + std::string("udp ") + shared[i].to_string();
    sep = ", ";
  }
  text += " shared; own udp ports ";
  sep = "";
  for (const auto& w : workers)
    for (const auto& ep : w->server().own_endpoints()) {
      text += sep + std::to_string(ep.port);
      sep = ", ";
    }
  return text + ")";
}

int run(const std::string& config_path, bool check_only) {
  sw::config::Config cfg;
  Stores stores;
  std::string lab_key;
  try {
    cfg = sw::config::load_file(config_path);
    stores = load_stores(cfg);
    if (cfg.lab.role != sw::config::LabRole::none) lab_key = sw::config::load_lab_key(cfg.lab.key_file);
  } catch (const sw::config::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  // Certificates and keys are part of the config: --check loads them too.
  if (std::string error; !sw::proxy::tls::load_contexts(cfg, &error)) {
    std::cerr << config_path << ": " << error << "\n";
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
  VerdictFile verdict_file(cfg.diag.verdict_log);
  if (!verdict_file.ok()) {
    log->error("diag.verdict_log: cannot open {}: {}", cfg.diag.verdict_log, std::strerror(errno));
    return 1;
  }
  const std::size_t worker_count = cfg.workers ? cfg.workers : usable_cpus();
  // A phone may come back on another source port, and so to another worker:
  // every worker must know the others' nonces.
  if (worker_count > 1 && cfg.challenge.secret.empty()) cfg.challenge.secret = sw::auth::random_hex(32);

  // diag.capture: outlives the server that feeds it; its destructor completes the file.
  std::unique_ptr<sw::proxy::CaptureWriter> capture;
  if (!cfg.diag.capture.empty()) {
    capture = std::make_unique<sw::proxy::CaptureWriter>(cfg.diag.capture, log);
    if (!capture->ok()) {
      log->error("diag.capture: {}", capture->error());
      return 1;
    }
  }

  uv_loop_t* loop = uv_default_loop();
  std::vector<sw::diag::Observer*> extra;
  if (capture) extra.push_back(capture.get());
  // lab.role: what the device under test rewrites, per path, as it is found.
  std::unique_ptr<sw::diag::AlgReport> alg_report;
  if (!lab_key.empty()) {
    alg_report = std::make_unique<sw::diag::AlgReport>([log](const std::string& line) { log->warn("{}", line); });
    extra.push_back(alg_report.get());
    log->info("lab: role {}, sealing toward and checking from the {} side",
              cfg.lab.role == sw::config::LabRole::inner ? "inner" : "outer",
              cfg.lab.role == sw::config::LabRole::inner ? "upstream" : "phone");
  }
  // Loops of the workers after the first (the config refuses lab mode and the
  // capture with more than one worker: they are worker 0's alone).
  std::vector<std::unique_ptr<uv_loop_t>> worker_loops;
  std::vector<std::unique_ptr<Worker>> workers;
  workers.push_back(std::make_unique<Worker>(loop, cfg, stores, log, verdict_file, extra, capture.get(), lab_key,
                                             sw::proxy::WorkerPlace{0, worker_count, {}}));

  // metrics.listen: a scrape gathers the counters from their owners, each on its own loop.
  std::unique_ptr<sw::proxy::MetricsListener> metrics;
  if (!cfg.metrics.listen.empty()) {
    auto started = std::chrono::steady_clock::now();
    metrics = std::make_unique<sw::proxy::MetricsListener>(loop, log, [&workers, started] {
      sw::proxy::Snapshot s;
      workers[0]->snapshot(s);
      for (std::size_t i = 1; i < workers.size(); ++i) {
        auto part = std::make_shared<std::promise<sw::proxy::Snapshot>>();
        auto answer = part->get_future();
        auto* w = workers[i].get();
        // A worker that has stopped (draining) has nothing to add.
        if (!w->post([w, part] {
              sw::proxy::Snapshot mine;
              w->snapshot(mine);
              part->set_value(mine);
            }))
          continue;
        if (answer.wait_for(std::chrono::seconds(2)) == std::future_status::ready) add(s, answer.get());
      }
      s.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      return sw::proxy::render_prometheus(s);
    });
  }
  // The metrics listener first: it is up by the time "ready" is logged.
  bool started = (!metrics || metrics->start(cfg.metrics.host, cfg.metrics.port)) && workers[0]->server().start();
  std::vector<sw::proxy::Address> shared;
  if (started) shared = workers[0]->server().listen_addresses();
  for (std::size_t i = 1; started && i < worker_count; ++i) {
    worker_loops.push_back(std::make_unique<uv_loop_t>());
    uv_loop_init(worker_loops.back().get());
    workers.push_back(std::make_unique<Worker>(worker_loops.back().get(), cfg, stores, log, verdict_file,
                                               std::vector<sw::diag::Observer*>{}, nullptr, lab_key,
                                               sw::proxy::WorkerPlace{i, worker_count, shared}));
    started = workers.back()->server().start();
  }
  // A Via or Route naming any worker's own port is ours, whichever worker reads it.
  for (auto& w : workers)
    for (auto& other : workers)
      if (other != w) w->server().also_ours(other->server().own_endpoints());

  // SIGTERM / SIGINT: every worker drains (transactions in flight finish,
  // nothing new starts) and closes its handles; once all have, the main loop
  // closes its own, uv_run returns and we exit 0. SIGHUP: reload the config
  // file, the TLS certificates and the users file; a broken file keeps what is running.
  struct Control {
    std::vector<std::unique_ptr<Worker>>* workers;
    sw::proxy::MetricsListener* metrics;  // null without metrics.listen
    std::string config_path;
    std::string challenge_realm;  // the running challenger's: users without a realm of their own belong to it
    uv_signal_t signals[3];
    uv_async_t worker_stopped{};
    // Counted and announced under one lock: the main loop must not close the
    // announcement's handle between a worker's count and its send.
    std::mutex mutex;
    std::size_t stopped = 0;
    void stop_worker(Worker* w) {
      w->stop();
      std::lock_guard lock(mutex);
      ++stopped;
      uv_async_send(&worker_stopped);
    }
    void close_when_all_stopped() {
      std::lock_guard lock(mutex);
      if (stopped < workers->size()) return;
      if (metrics) metrics->close();
      for (auto& h : signals)
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&h))) uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&worker_stopped), nullptr);
    }
  } control{&workers, metrics.get(), config_path, cfg.challenge.realm, {}, {}, {}, 0};
  uv_async_init(loop, &control.worker_stopped,
                [](uv_async_t* a) { static_cast<Control*>(a->data)->close_when_all_stopped(); });
  control.worker_stopped.data = &control;
  const int numbers[3] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) {
    uv_signal_init(loop, &control.signals[i]);
    control.signals[i].data = &control;
  }
  int rc = 0;
  if (!started) {
    rc = 1;
    for (auto& w : workers) control.stop_worker(w.get());
  } else {
    if (worker_count > 1) log->info("{}", describe_workers(workers, shared, cfg));
    log->info("ready: relaying to {} ({} listeners)", cfg.upstream.uri, cfg.listen.size());
    for (int i = 0; i < 2; ++i)
      uv_signal_start(
          &control.signals[i],
          [](uv_signal_t* s, int signum) {
            auto* c = static_cast<Control*>(s->data);
            spdlog::get("sipwitness")->info("signal {}: stopping", signum);
            for (auto& worker : *c->workers) {
              auto* w = worker.get();
              // A second signal stops at once (drain calls done then).
              w->post([c, w] { w->server().drain([c, w] { c->stop_worker(w); }); });
            }
          },
          numbers[i]);
    uv_signal_start(
        &control.signals[2],
        [](uv_signal_t* s, int) {
          auto* c = static_cast<Control*>(s->data);
          auto logger = spdlog::get("sipwitness");
          for (auto& worker : *c->workers) worker->post([w = worker.get()] { w->server().reload_tls(); });
          sw::config::Config fresh_cfg;
          try {
            fresh_cfg = sw::config::load_file(c->config_path);
          } catch (const sw::config::ConfigError& e) {
            logger->error("SIGHUP: kept the running config: {}", e.what());
            return;
          }
          logger->set_level(spdlog::level::from_str(fresh_cfg.log.level));
          logger->info("SIGHUP: reloaded the config: log.level {}, users and known credentials now; "
                       "workers, listen, upstream, dns, relay, limits, challenge settings, diag and lab at the next start",
                       fresh_cfg.log.level);
          if (fresh_cfg.challenge.users.empty() && fresh_cfg.diag.known_credentials.empty()) return;
          // The challenger keeps its realm until the next start: users without
          // a realm of their own are its users, whatever the file says now.
          fresh_cfg.challenge.realm = c->challenge_realm;
          try {
            auto fresh = load_stores(fresh_cfg);
            logger->info("SIGHUP: reloaded users ({} users, {} known credentials)",
                         fresh.users ? fresh.users->size() : 0, fresh.known ? fresh.known->size() : 0);
            for (auto& worker : *c->workers)
              worker->post([w = worker.get(), fresh] {
                // No users file now: the running users stay (a challenger
                // without users would refuse everyone) until the next start.
                if (fresh.users) w->server().reload_users(fresh.users);
                w->tracker().set_known(fresh.known);
              });
          } catch (const sw::config::ConfigError& e) {
            logger->error("SIGHUP: kept the running users: {}", e.what());
          }
        },
        SIGHUP);
    for (std::size_t i = 1; i < workers.size(); ++i) workers[i]->run_in_thread();
  }
  uv_run(loop, UV_RUN_DEFAULT);
  for (auto& w : workers) w->join();
  // Without threads (a failed start) the other loops still close their handles here.
  for (auto& l : worker_loops) {
    uv_run(l.get(), UV_RUN_DEFAULT);
    uv_loop_close(l.get());
  }
  uv_loop_close(loop);
  if (alg_report)
    for (const auto& line : alg_report->summary()) log->info("{}", line);
  return rc;
}

// "analyze: capture.pcap 45% (45.0 of 100.0 MB)" on a terminal, at most five times a second.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  void update(const std::string& file, std::uint64_t done, std::uint64_t total) {
    if (!enabled_ || total == 0) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(200) && done < total) return;
    last_ = now;
    std::fprintf(stderr, "\ranalyze: %s %3d%% (%.1f of %.1f MB)", file.c_str(), static_cast<int>(done * 100 / total),
                 static_cast<double>(done) / 1e6, static_cast<double>(total) / 1e6);
    shown_ = true;
  }
  void clear() {
    if (shown_) std::fputs("\r\033[K", stderr);
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

struct AnalyzeOptions {
  std::vector<std::string> files;
  std::string format = "text";
  std::string out = "-";
  std::string known_credentials;
  int flow_timeout_s = 32;
};

// Offline diagnosis: every file through the same tracker the proxy uses, on the
// capture's clock. Text and JSON stream out as flows end; HTML is written at the end.
int analyze(const AnalyzeOptions& opt) {
  sw::capture::AnalyzeSettings settings;
  settings.tracker.flow_timeout = std::chrono::seconds(opt.flow_timeout_s);
  settings.keep_ladders = opt.format == "html";
  if (!opt.known_credentials.empty()) {
    try {
      settings.tracker.known =
          std::make_shared<const sw::auth::CredentialStore>(sw::config::load_users(opt.known_credentials), "");
    } catch (const sw::config::ConfigError& e) {
      std::cerr << e.what() << "\n";
      return 2;
    }
  }
  std::ofstream file_out;
  if (opt.out != "-") {
    file_out.open(opt.out, std::ios::binary | std::ios::trunc);
    if (!file_out) {
      std::cerr << "sipwitness analyze: cannot write " << opt.out << ": " << std::strerror(errno) << "\n";
      return 1;
    }
  }
  std::ostream& out = opt.out == "-" ? std::cout : file_out;
  Progress progress(isatty(STDERR_FILENO));
  sw::capture::Analyzer analyzer(settings, [&](const sw::diag::Verdict& v) {
    if (opt.out == "-") progress.clear();  // the verdict may go to the same terminal
    if (opt.format == "text") out << sw::capture::format_text_verdict(v);
    else if (opt.format == "json") out << sw::diag::to_json_line(v) << '\n';
  });

  std::vector<sw::capture::InputSummary> inputs;
  bool unreadable = false;
  for (const auto& path : opt.files) {
    sw::capture::FileFormat format{};
    auto outcome = sw::capture::read_capture_file(
        path, [&](const sw::capture::CapturedMessage& m) { analyzer.feed(m, path); },
        [&](std::uint64_t done, std::uint64_t total) { progress.update(path, done, total); }, format);
    progress.clear();
    if (outcome.error) {
      std::cerr << "sipwitness analyze: " << outcome.error->describe() << "\n";
      unreadable = true;
    }
    inputs.push_back({path, std::string(sw::capture::to_string(format)), std::move(outcome)});
  }
  analyzer.finish();
  if (opt.format == "html") {
    sw::capture::write_html(out, inputs, analyzer.stats(), analyzer.ladders());
  } else {
    // JSON output stays pure verdict lines; the summary goes beside it.
    auto summary = sw::capture::format_text_summary(inputs, analyzer.stats());
    if (opt.format == "text") out << "\n" << summary;
    else std::cerr << summary;
  }
  out.flush();
  if (!out) {
    std::cerr << "sipwitness analyze: writing " << (opt.out == "-" ? "standard output" : opt.out) << " failed\n";
    return 1;
  }
  return unreadable ? 2 : 0;
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

struct ProbeArgs {
  std::string target;
  std::string transport = "all";
  std::string key_file;
  std::string format = "text";
  double timeout_s = 3;
  std::string bind_ip;
};

// The active ALG test against a sipwitness with lab.role outer across the device.
int probe(const ProbeArgs& args) {
  sw::proxy::ProbeOptions options;
  auto target = sw::sip::parse_host_port(args.target);
  if (!target || target->port == 0) {
    std::cerr << "probe: --target: expected HOST:PORT, got \"" << args.target << "\"\n";
    return 2;
  }
  options.target_host = std::string(target->host);
  options.target_port = target->port;
  if (args.transport == "udp") options.transports = {sw::proxy::Transport::udp};
  else if (args.transport == "tcp") options.transports = {sw::proxy::Transport::tcp};
  if (args.key_file.empty()) {
    std::cerr << "probe: --key-file is required: the lab key the outer sipwitness checks seals with\n";
    return 2;
  }
  try {
    options.key = sw::config::load_lab_key(args.key_file);
  } catch (const sw::config::ConfigError& e) {
    std::cerr << "probe: " << e.what() << "\n";
    return 2;
  }
  options.format = args.format == "json" ? sw::proxy::ProbeFormat::json : sw::proxy::ProbeFormat::text;
  options.timeout = std::chrono::milliseconds(static_cast<long long>(args.timeout_s * 1000));
  options.bind_ip = args.bind_ip;
  return sw::proxy::run_probe(options, std::cout, std::cerr);
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

  AnalyzeOptions analyze_opt;
  auto* analyze_cmd = app.add_subcommand("analyze", "Diagnose captured SIP: pcap, pcapng or plain-text traces");
  analyze_cmd->add_option("files", analyze_opt.files, "Capture files")->required();
  analyze_cmd->add_option("--format", analyze_opt.format, "text, json (verdict log lines) or html")
      ->check(CLI::IsMember({"text", "json", "html"}));
  analyze_cmd->add_option("--out", analyze_opt.out, "Output file (default: standard output)");
  analyze_cmd->add_option("--known-credentials", analyze_opt.known_credentials,
                          "Users file with passwords or HA1s, to prove a wrong password");
  analyze_cmd->add_option("--flow-timeout", analyze_opt.flow_timeout_s,
                          "Seconds of silence after a challenge that mean the client gave up")
      ->check(CLI::Range(1, 3600));

  ProbeArgs probe_args;
  auto* probe_cmd = app.add_subcommand(
      "probe", "Active ALG test: sealed REGISTER, INVITE and OPTIONS to a sipwitness with lab.role outer "
               "(exit 0: nothing rewritten, 3: rewrites found, 1: no answer)");
  probe_cmd->add_option("--target", probe_args.target, "HOST:PORT of the outer sipwitness, across the device")
      ->required();
  probe_cmd->add_option("--transport", probe_args.transport, "udp, tcp or all (default)")
      ->check(CLI::IsMember({"udp", "tcp", "all"}));
  probe_cmd->add_option("--key-file", probe_args.key_file, "The lab key shared with the outer sipwitness");
  probe_cmd->add_option("--format", probe_args.format, "text, or json (one object per finding)")
      ->check(CLI::IsMember({"text", "json"}));
  probe_cmd->add_option("--timeout", probe_args.timeout_s, "Seconds to wait for each answer (default 3)")
      ->check(CLI::Range(0.1, 60.0));
  probe_cmd->add_option("--bind", probe_args.bind_ip, "Local address to send from (default: the kernel's choice)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*run_cmd) return run(config_path, check_only);
  if (*ha1_cmd) return ha1(user, realm, algorithm);
  if (*analyze_cmd) return analyze(analyze_opt);
  if (*probe_cmd) return probe(probe_args);
  return 2;
}
