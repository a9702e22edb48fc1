// A bloomz process running in the background, for end-to-end tests that signal it, kill it
// mid-run, feed its stdin slowly or measure its peak memory.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <string_view>

namespace bloomz::test {

class BloomzProcess {
 public:
  // Starts `sh -c "exec bloomz ARGS REDIRECTS"`, so the pid is bloomz's own. With pipe_stdin the
  // process reads stdin from a pipe the test writes to (write_stdin, close_stdin).
  BloomzProcess(const std::string& args, const std::string& redirects, bool pipe_stdin = false) {
    const std::string cmd = "exec " + std::string(BLOOMZ_BINARY) + " " + args + " " + redirects;
    int fds[2] = {-1, -1};
    if (pipe_stdin && ::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      if (pipe_stdin) {
        ::dup2(fds[0], STDIN_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
      }
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pipe_stdin) {
      ::close(fds[0]);
      stdin_ = fds[1];
      std::signal(SIGPIPE, SIG_IGN);  // a child that ends early must not end the test
    }
  }
  ~BloomzProcess() {
    close_stdin();
    if (pid_ > 0 && status_ < 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  BloomzProcess(const BloomzProcess&) = delete;
  BloomzProcess& operator=(const BloomzProcess&) = delete;

  bool started() const { return pid_ > 0; }
  void signal(int sig) const { ::kill(pid_, sig); }
  // False once the reader has gone away.
  bool write_stdin(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(stdin_, bytes.data(), bytes.size());
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void close_stdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }
  // Waits for the end; the exit status, or 128 + the signal that ended it (as a shell says).
  int wait() {
    if (status_ >= 0) return status_;
    int st = 0;
    rusage ru{};
    if (::wait4(pid_, &st, 0, &ru) != pid_) return -1;
    peak_rss_kb_ = ru.ru_maxrss;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }
  long peak_rss_kb() const { return peak_rss_kb_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int status_ = -1;
  long peak_rss_kb_ = 0;
};

}  // namespace bloomz::test
