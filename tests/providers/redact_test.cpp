#include "providers/redact.h"

#include <catch2/catch.hpp>

using namespace kumo;

TEST_CASE("redact_url: userinfo and every query value are replaced, the rest is kept", "[redact]") {
  CHECK(redact_url("https://user:pw@host:8443/a/b?c") == "https://(redacted)@host:8443/a/b?c");
  CHECK(redact_url("https://token@host/a") == "https://(redacted)@host/a");
  CHECK(redact_url("https://u:p@ss@host/a") == "https://(redacted)@host/a");
  CHECK(redact_url("https://m/x.qcow2?token=abc&v=2&flag#part") ==
        "https://m/x.qcow2?token=(redacted)&v=(redacted)&flag#part");
  CHECK(redact_url("https://u:pw@m?sig=1") == "https://(redacted)@m?sig=(redacted)");
  CHECK(redact_url("https://host/a@b") == "https://host/a@b");
  CHECK(redact_url("/plain/path") == "/plain/path");
  CHECK(redact_url("") == "");
  const std::string once = redact_url("https://a:b@h/p?t=1");
  CHECK(redact_url(once) == once);
}

TEST_CASE("redact_host_uri: only a password is replaced", "[redact]") {
  CHECK(redact_host_uri("qemu+ssh://root:hunter2@hv1/system") ==
        "qemu+ssh://root:(redacted)@hv1/system");
  CHECK(redact_host_uri("qemu+ssh://root@hv1/system?keyfile=/k") ==
        "qemu+ssh://root@hv1/system?keyfile=/k");
  CHECK(redact_host_uri("qemu:///system") == "qemu:///system");
  CHECK(redact_host_uri("test:///default") == "test:///default");
}

TEST_CASE("strip_url_secrets: userinfo, query and fragment are gone", "[redact]") {
  CHECK(strip_url_secrets("https://u:pw@m:8443/d/x.qcow2?token=abc#f") ==
        "https://m:8443/d/x.qcow2");
  CHECK(strip_url_secrets("https://m/x.qcow2") == "https://m/x.qcow2");
  CHECK(strip_url_secrets("sha256:abcd") == "sha256:abcd");
  CHECK(strip_url_secrets("/srv/x.qcow2") == "/srv/x.qcow2");
}
