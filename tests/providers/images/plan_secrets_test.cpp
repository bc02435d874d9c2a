// The kumo binary on libvirt's test driver (test:///default, in its own process) planning an
// image whose URLs carry user:password and ?token=, served by the loopback server of
// http_fixture.py: no output, text or JSON, stdout or stderr, shows a secret, and the host URI's
// password is redacted too.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "http_fixture.h"
#include "providers/digest.h"

using kumo::testing::HttpFixture;
using kumo::testing::TempDir;

namespace {

struct Run {
  int status = -1;
  std::string out, err;
};

// fork/exec of the kumo binary with these arguments and environment (no shell).
Run kumo_run(std::vector<std::string> args, std::vector<std::string> env) {
  int out_pipe[2], err_pipe[2];
  REQUIRE(::pipe(out_pipe) == 0);
  REQUIRE(::pipe(err_pipe) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    std::vector<char*> argv{const_cast<char*>(KUMO_BINARY)};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(KUMO_BINARY, argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  Run r;
  char buf[4096];
  for (auto [fd, dst] : {std::pair{out_pipe[0], &r.out}, std::pair{err_pipe[0], &r.err}}) {
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) dst->append(buf, n);
    ::close(fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

TEST_CASE("kumo plan never shows an image URL's credentials or token, nor a host's password",
          "[images][cli]") {
  TempDir root, home;
  const std::string bytes = kumo::testing::random_bytes(100000, true);
  kumo::testing::write_file(root / "deb.qcow2", bytes);
  kumo::testing::write_file(root / "SHA256SUMS", kumo::sha256_hex(bytes) + "  deb.qcow2\n");
  HttpFixture server(root.path());
  const std::string base = "http://alice:s3cret@127.0.0.1:" + std::to_string(server.port());
  kumo::testing::write_file(home / "kumo.yaml",
                            "cluster: sec\n"
                            "hosts:\n"
                            "  hv1: {uri: \"test:///default\", pool: default-pool}\n"
                            "  hv2: {uri: \"qemu+tcp://ops:hunter2@127.0.0.1:1/system\"}\n"
                            "images:\n"
                            "  deb:\n"
                            "    url: \"" +
                                base +
                                "/deb.qcow2?token=t0psecret\"\n"
                                "    checksum_url: \"" +
                                base +
                                "/SHA256SUMS?token=t0psecret\"\n"
                                "vms:\n"
                                "  web: {image: deb, host: hv1}\n");
  const std::vector<std::string> env{"HOME=" + home.path(), "NO_COLOR=1"};

  for (const auto& format : {"--human", "--json", "--markdown"}) {
    std::vector<std::string> args{"plan",      "-f", home / "kumo.yaml", "--skip-unreachable",
                                  "--timeout", "2"};
    if (std::string(format) != "--human") args.push_back(format);
    const Run r = kumo_run(args, env);
    INFO(format << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find("(redacted)") != std::string::npos);
    for (const char* secret : {"s3cret", "t0psecret", "alice", "hunter2"}) {
      CHECK(r.out.find(secret) == std::string::npos);
      CHECK(r.err.find(secret) == std::string::npos);
    }
  }
  CHECK(server.requests("/SHA256SUMS") >= 1);  // the plan did read the list, with the token
}
