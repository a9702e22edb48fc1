// `bloomz serve`: the HTTP server (src/server). This file owns the process side: flags, the model,
// the listening socket, and the shutdown on SIGTERM/SIGINT (stop accepting, cancel what runs,
// exit 0 within a second). The contract is docs/cli.md, "bloomz serve".
#include <httplib.h>
#include <pthread.h>
#include <sys/socket.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <filesystem>
#include <mutex>
#include <thread>

#include "bloomz/error.hpp"
#include "bloomz/model.hpp"
#include "bloomz/tokenizer.hpp"
#include "cli/commands.hpp"
#include "server/http_api.hpp"
#include "server/scheduler.hpp"
#include "server/server_log.hpp"

namespace bloomz::cli {

namespace {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  int64_t parallel = 4;
  std::string api_key;
  int64_t queue = 64;
  uint64_t max_body = 1 << 20;
  std::string log_format = "text";
  int64_t ctx_size = 0;
  int64_t batch_size = 512;
  int64_t prompt_chunk = 64;
  std::string kv_type = "f16";
};

// httplib 0.11 listens with a backlog of 5: a burst of clients overflows it and some connections
// are dropped before they reach a worker. Listening again on the bound socket raises the backlog.
class Listener : public httplib::Server {
 public:
  bool raise_backlog(int backlog) { return ::listen(svr_sock_, backlog) == 0; }
};

// Waits for SIGTERM/SIGINT on its own thread (the signals are blocked everywhere else), then stops
// the server. If the process is not gone within the grace period, it ends it with status 0.
class ShutdownOnSignal {
 public:
  ShutdownOnSignal(httplib::Server& svr, server::Scheduler& sched) : svr_(svr), sched_(sched) {
    thread_ = std::thread([this] { wait(); });
  }
  ~ShutdownOnSignal() {
    {
      std::lock_guard lk(mu_);
      finished_ = true;
    }
    cv_.notify_all();
    pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait when no signal came
    thread_.join();
  }
  // Blocks the signals in the calling thread and every thread it creates afterwards.
  static void block_signals() {
    sigset_t set = signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

 private:
  static sigset_t signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
  }
  void wait() {
    const sigset_t set = signals();
    int sig = 0;
    sigwait(&set, &sig);
    std::unique_lock lk(mu_);
    if (finished_) return;
    spdlog::info("{}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    lk.unlock();
    svr_.stop();       // no new connections
    sched_.shutdown(); // running requests end as "cancelled"; their streams get a final event
    lk.lock();
    if (!cv_.wait_for(lk, std::chrono::milliseconds(900), [&] { return finished_; })) {
      // A connection httplib is still waiting on (keep-alive, a slow body) must not hold us.
      spdlog::info("exiting with connections still open");
      spdlog::default_logger()->flush();
      std::_Exit(0);
    }
  }

  httplib::Server& svr_;
  server::Scheduler& sched_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::thread thread_;
};

int run_serve(ServeOptions& opt, const CommonOptions& common) {
  ShutdownOnSignal::block_signals();
  server::setup_server_logging(opt.log_format == "json" ? server::LogFormat::Json : server::LogFormat::Text);
  apply_runtime_options(common);
  if (opt.api_key.empty()) {
    if (const char* env = std::getenv("BLOOMZ_API_KEY"); env != nullptr) opt.api_key = env;
  }

  const std::string path = resolve_model_path(common);
  const auto model = Model::load(path, load_options(common, /*long_run=*/true));
  const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
  server::SchedulerOptions so;
  so.slots = static_cast<size_t>(opt.parallel);
  so.queue = static_cast<size_t>(opt.queue);
  so.session = {.n_ctx = opt.ctx_size, .n_batch = opt.batch_size, .kv_type = kv_type_from_name(opt.kv_type)};
  so.prompt_chunk = opt.prompt_chunk;
  server::Scheduler scheduler(*model, tok, so);

  Listener svr;
  // A worker per request that can be in flight, plus a few so that /health and the 503 answers
  // are not stuck behind waiting completions.
  const size_t workers = so.slots + so.queue + 4;
  svr.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  // httplib's default also sets SO_REUSEPORT, which lets a second server share the port unnoticed;
  // SO_REUSEADDR alone still allows a quick restart.
  svr.set_socket_options([](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server::HttpApi api(tok, scheduler,
                      {.api_key = opt.api_key, .max_body = static_cast<size_t>(opt.max_body),
                       .model_name = std::filesystem::path(path).filename().string()});
  api.install(svr);

  int port = opt.port;
  errno = 0;
  const bool bound = port == 0 ? (port = svr.bind_to_any_port(opt.host)) > 0 : svr.bind_to_port(opt.host, port);
  if (!bound) {
    // httplib does not say why; errno does when bind() or listen() failed (in use, no permission).
    const bool bind_error = errno == EADDRINUSE || errno == EACCES || errno == EADDRNOTAVAIL;
    throw Error(ErrorKind::Io, fmt::format("cannot listen on {}:{} (--host/--port): {}", opt.host, opt.port,
                                           bind_error ? std::strerror(errno) : "not an address of this machine"));
  }
  if (!svr.raise_backlog(SOMAXCONN)) spdlog::warn("cannot raise the listen backlog: {}", std::strerror(errno));
  spdlog::info("listening on http://{}:{} ({}, {} slots, queue {}, context {}{})", opt.host, port, path, so.slots, so.queue,
               scheduler.n_ctx(), opt.api_key.empty() ? "" : ", API key required");
  {
    ShutdownOnSignal on_signal(svr, scheduler);
    svr.listen_after_bind();
    scheduler.shutdown();
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace

Command add_serve_command(CLI::App& root, CommonOptions& common) {
  auto opt = std::make_shared<ServeOptions>();
  CLI::App* sub = root.add_subcommand("serve", "HTTP server: OpenAI /v1/completions, llama.cpp /completion, /tokenize, /detokenize, /health");
  sub->add_option("--host", opt->host, "Address to listen on (default 127.0.0.1: this machine only)");
  sub->add_option("--port", opt->port, "Port (0 = any free port, logged at start)")->check(CLI::Range(0, 65535));
  sub->add_option("--parallel", opt->parallel, "Requests decoded together (slots)")->check(CLI::Range(int64_t(1), int64_t(256)));
  sub->add_option("--api-key", opt->api_key, "Require 'Authorization: Bearer KEY' (default: $BLOOMZ_API_KEY)");
  sub->add_option("--queue", opt->queue, "Requests waiting for a slot before 503")->check(CLI::Range(int64_t(0), int64_t(4096)));
  sub->add_option("--max-body", opt->max_body, "Largest request body (e.g. 1MiB; larger: 413)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t(1), uint64_t(1) << 32));
  sub->add_option("--log-format", opt->log_format, "text|json (one JSON object per line)")->check(CLI::IsMember({"text", "json"}));
  sub->add_option("-c,--ctx-size", opt->ctx_size, "Context per slot in tokens (0 = the model's)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  sub->add_option("-b,--batch-size", opt->batch_size, "Prompt tokens per forward call when nothing else runs")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  sub->add_option("--prompt-chunk", opt->prompt_chunk, "Prompt tokens per step while other requests are decoding")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  add_kv_type_option(sub, opt->kv_type);
  return {sub, [opt, &common] { return run_serve(*opt, common); }};
}

}  // namespace bloomz::cli
