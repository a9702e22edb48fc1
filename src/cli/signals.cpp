// The stop-signal handler: async-signal-safe, it stores into lock-free atomics and nothing else.
#include "cli/signals.hpp"

#include <csignal>

namespace bloomz::cli {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  int none = 0;
  g_signal.compare_exchange_strong(none, sig);  // the first signal decides the exit status
  g_stop.store(true);
}

}  // namespace

void install_stop_handlers(std::initializer_list<int> signals) {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  for (const int sig : signals) sigaction(sig, &sa, nullptr);
}

const std::atomic<bool>& stop_requested() { return g_stop; }

int stop_signal() { return g_signal.load(); }

}  // namespace bloomz::cli
