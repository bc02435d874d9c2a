// What kumo asks a guest through its agent (providers/guest.cpp), on a scripted agent.
#include "providers/guest.h"

#include <catch2/catch.hpp>

#include "tests/exec_fixture.h"

using namespace kumo;

namespace {

// A fake session whose agent serves one file and records every command; reads can be made to
// fail.
class ScriptedAgent : public test::FakeSession {
 public:
  using FakeSession::FakeSession;
  nlohmann::json agent_command(const std::string&, const nlohmann::json& command,
                               std::chrono::seconds) override {
    const std::string what = command.value("execute", "");
    seen.push_back(what + (command.contains("arguments") && command["arguments"].contains("handle")
                               ? " " + command["arguments"]["handle"].dump()
                               : ""));
    if (what == "guest-file-open") return 7;
    if (what == "guest-file-read") {
      if (fail_read) throw HostError("host hv1: guest agent of web did not answer");
      return {{"buf-b64", "eyJ2MSI6IHsiZXJyb3JzIjogW119fQ=="}, {"count", 22}, {"eof", true}};
    }
    return nlohmann::json::object();
  }
  bool fail_read = false;
  std::vector<std::string> seen;
};

}  // namespace

TEST_CASE("a guest file is read and its handle closed", "[guest]") {
  test::Lab lab;
  ScriptedAgent agent(lab.connector, HostTarget{"hv1", "test:///hv1", "default"});
  const auto text = read_guest_file(agent, "web", "/run/cloud-init/result.json");
  REQUIRE(text);
  CHECK(*text == R"({"v1": {"errors": []}})");
  CHECK(agent.seen ==
        std::vector<std::string>{"guest-file-open", "guest-file-read 7", "guest-file-close 7"});
  CHECK(cloud_init_status(agent, "web", false, std::chrono::seconds(1)).done());
}

TEST_CASE("a read that fails still closes the agent's file handle", "[guest]") {
  // Every readiness poll opens the file: a handle left open per failed read piles up in the guest.
  test::Lab lab;
  ScriptedAgent agent(lab.connector, HostTarget{"hv1", "test:///hv1", "default"});
  agent.fail_read = true;
  CHECK_THROWS_AS(read_guest_file(agent, "web", "/run/cloud-init/result.json"), HostError);
  CHECK(agent.seen ==
        std::vector<std::string>{"guest-file-open", "guest-file-read 7", "guest-file-close 7"});
}
