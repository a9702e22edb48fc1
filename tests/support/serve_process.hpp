// A `bloomz serve` child process for end-to-end tests: started on 127.0.0.1 with --port 0 (the
// kernel picks a free port, read back from the "listening on" log line), its stderr kept in a
// temporary file, killed if a test leaves it running.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/run_bloomz.hpp"
#include "support/test_files.hpp"

namespace bloomz::test {

class ServeProcess {
 public:
  // `env` is put before the command ("BLOOMZ_API_KEY=k"); waits up to 30 s for the server.
  explicit ServeProcess(const std::string& args, const std::string& env = "") : log_({}, "serve.log") {
    const std::string cmd = env + " exec " + std::string(BLOOMZ_BINARY) + " serve --host 127.0.0.1 --port 0 " + args + " 2>" +
                            shell_quote(log_.path()) + " </dev/null";
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 3000 && port_ == 0; ++i) {
      std::smatch m;
      const std::string text = log();
      if (std::regex_search(text, m, listening)) {
        port_ = std::stoi(m[1]);
      } else if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("bloomz serve exited early: " + text);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (port_ == 0) throw std::runtime_error("bloomz serve did not start: " + log());
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_text(log_.path()); }

  // Sends `sig` and waits up to `limit` for the exit. Returns the exit status (-1: killed by a
  // signal or still running after the limit); `seconds` gets the time it took.
  int signal_and_wait(int sig, std::chrono::milliseconds limit, double* seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    kill(pid_, sig);
    while (std::chrono::steady_clock::now() - t0 < limit) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = -1;
        *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return -1;
  }

  // Resident set size in KiB, from /proc.
  long rss_kib() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
  }

 private:
  TempFile log_;
  pid_t pid_ = -1;
  int port_ = 0;
  int status_ = 0;
};

}  // namespace bloomz::test
