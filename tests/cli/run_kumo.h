// Running programs from a test the way a person's shell would, without a shell: the kumo binary
// (or bash, zsh, fish, man) by fork/exec with fixed arguments and only the environment given;
// stdout and stderr captured separately. Also a temporary directory that removes itself.
#pragma once

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace kumo::test {

struct Run {
  int status = -1;
  int signal = 0;  // the signal that killed the program, 0 if it exited
  std::string out, err;
};

// In a forked child: becomes `program` with these arguments and only this environment.
[[noreturn]] inline void exec_program(const std::string& program, std::vector<std::string> args,
                                      std::vector<std::string> env) {
  std::vector<char*> argv{const_cast<char*>(program.c_str())};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  execve(program.c_str(), argv.data(), envp.data());
  _exit(127);
}

// Where the program's stdout goes: a pipe read by the test, a pipe nobody reads (like
// `kumo schema | head -0`: every write fails), or a file (such as /dev/full).
struct Stdout {
  bool closed = false;
  std::string file;
};

inline Run run_program(const std::string& program, std::vector<std::string> args,
                       const std::vector<std::string>& env = {}, const Stdout& to = {}) {
  int out_pipe[2], err_pipe[2];
  REQUIRE(pipe(out_pipe) == 0);
  REQUIRE(pipe(err_pipe) == 0);
  if (to.closed || !to.file.empty()) {
    close(out_pipe[0]);
    out_pipe[0] = -1;
  }
  if (!to.file.empty()) {
    close(out_pipe[1]);
    out_pipe[1] = open(to.file.c_str(), O_WRONLY);
    REQUIRE(out_pipe[1] >= 0);
  }
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    close(err_pipe[0]);
    exec_program(program, args, env);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  Run r;
  char buf[4096];
  for (auto [fd, dst] : {std::pair{out_pipe[0], &r.out}, std::pair{err_pipe[0], &r.err}}) {
    if (fd < 0) continue;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) dst->append(buf, static_cast<size_t>(n));
    close(fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return r;
}

inline Run run_kumo(std::vector<std::string> args, const std::vector<std::string>& env = {},
                    const Stdout& to = {}) {
  return run_program(KUMO_BINARY, std::move(args), env, to);
}

// A directory under $TMPDIR (or /tmp), removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kumo-cli-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(*this / name) << text;
    return *this / name;
  }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace kumo::test
