// providers/ssh: the per-cluster state (known_hosts), the routing table, running ssh.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "providers/guest.h"
#include "providers/ssh/routes.h"
#include "providers/ssh/spawn.h"
#include "providers/ssh/state.h"

using namespace kumo;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/kumo-ssh-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("known_hosts: keys per VM alias and domain UUID, other lines stay", "[unit][ssh]") {
  const std::string dir = temp_dir();
  const std::string path = dir + "/known_hosts";
  CHECK_FALSE(ssh::known_keys(path, "web-0.fest.kumo"));
  {
    std::ofstream out(path);
    out << "hand.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIhand\n";
  }
  ssh::remember_keys(path, "web-0.fest.kumo", "uuid-1",
                     {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIone", "ecdsa-sha2-nistp256 AAAAE2Vj"});
  auto k = ssh::known_keys(path, "web-0.fest.kumo");
  REQUIRE(k);
  CHECK(k->uuid == "uuid-1");
  CHECK(k->keys.size() == 2);
  CHECK_FALSE(ssh::known_keys(path, "web-1.fest.kumo"));
  ssh::remember_keys(path, "web-0.fest.kumo", "uuid-2",
                     {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItwo"});
  k = ssh::known_keys(path, "web-0.fest.kumo");
  REQUIRE(k);
  CHECK(k->uuid == "uuid-2");
  CHECK(k->keys == std::vector<std::string>{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItwo"});
  const std::string text = read(path);
  CHECK(text.find("hand.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIhand\n") == 0);
  CHECK(text.find("AAAAIone") == std::string::npos);
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::filesystem::remove_all(dir);
}

TEST_CASE("state_dir: under XDG_STATE_HOME, private", "[unit][ssh]") {
  const std::string dir = temp_dir();
  const char* old = std::getenv("XDG_STATE_HOME");
  const std::string saved = old ? old : "";
  setenv("XDG_STATE_HOME", dir.c_str(), 1);
  const std::string got = ssh::state_dir("fest");
  if (old)
    setenv("XDG_STATE_HOME", saved.c_str(), 1);
  else
    unsetenv("XDG_STATE_HOME");
  CHECK(got == dir + "/kumo/fest");
  struct stat st {};
  REQUIRE(stat(got.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  std::filesystem::remove_all(dir);
}

TEST_CASE("host keys from cloud-init's console block", "[unit][ssh]") {
  const std::string log =
      "noise\n-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIold root@x\n"
      "-----END SSH HOST KEY KEYS-----\nlater boot\n"
      "[   12.1] cloud-init[311]: -----BEGIN SSH HOST KEY KEYS-----\r\n"
      "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAA= root@web-0\r\n"
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAInew root@web-0\r\n"
      "-----END SSH HOST KEY KEYS-----\n";
  CHECK(host_keys_from_console(log) ==
        std::vector<std::string>{"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAA=",
                                 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAInew"});
  // A block cut short by the log's end is not trusted at all.
  CHECK(host_keys_from_console("-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 AAAAC3NzaC1lZDI1"
                               "NTE5AAAAInew\n")
            .empty());
  CHECK(host_key_of("ssh-ed25519 AAAA;rm -rf / x").empty());
  CHECK(host_key_of("not-a-key AAAAC3NzaC1lZDI1NTE5AAAAInew").empty());
}

TEST_CASE("routes: /proc/net/route, default routes do not count", "[unit][ssh]") {
  const auto routes = ssh::parse_proc_net_route(
      "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
      "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
      "virbr0\t007AA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
  REQUIRE(routes.size() == 2);
  CHECK(ssh::routed_here("192.168.122.50", routes));
  CHECK_FALSE(ssh::routed_here("10.20.0.5", routes));  // only by the default route
  CHECK_FALSE(ssh::routed_here("not-an-ip", routes));
}

TEST_CASE("run_watched: exit status, stderr relayed and watched, no shell", "[unit][ssh]") {
  auto r = ssh::run_watched({"sh", "-c", "echo 'Host key verification failed.' >&2; exit 255"});
  CHECK(r.exit_code == 255);
  CHECK(r.host_key_failed);
  CHECK_FALSE(r.host_key_changed);
  r = ssh::run_watched({"true"});
  CHECK(r.exit_code == 0);
  CHECK_FALSE(r.host_key_failed);
  // Arguments reach the program as they are: no word splitting, no expansion.
  r = ssh::run_watched({"test", "a b;$(false)", "=", "a b;$(false)"});
  CHECK(r.exit_code == 0);
  CHECK_THROWS_WITH(ssh::run_watched({"kumo-no-such-program"}),
                    Catch::Contains("cannot run kumo-no-such-program"));
  CHECK(ssh::shell_join({"ssh", "-o", "A=b c", "it's"}) == "ssh -o 'A=b c' 'it'\\''s'");
}
