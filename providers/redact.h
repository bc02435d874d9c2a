// URLs as they may be shown or stored: credentials are for curl and libvirt, never for logs,
// plans, cache metadata or libvirt metadata that read-only clients can see (docs/images.md).
#pragma once

#include <string>
#include <string_view>

namespace kumo {

// The URL with its secrets replaced: all userinfo and every query value,
// "https://u:pw@m/x?token=abc&v" → "https://(redacted)@m/x?token=(redacted)&v". For image and
// checksum URLs, where a bare user name may itself be a token. Text that is not a URL (a path)
// comes back unchanged. Idempotent.
std::string redact_url(std::string_view url);

// A libvirt host URI as shown in messages and plans: only a password is replaced
// ("qemu+ssh://root:pw@hv1/system" → "qemu+ssh://root:(redacted)@hv1/system"). The user name is
// kept (errors need it: ssh auth), and so are query parameters, which for libvirt are transport
// options (keyfile=, socket=, no_verify=), never secrets.
std::string redact_host_uri(std::string_view uri);

// What identifies the file behind a URL without anything secret in it: the URL with userinfo,
// query and fragment removed ("https://u:pw@m/x?t=1" → "https://m/x"). Idempotent; text that is
// not a URL comes back unchanged.
std::string strip_url_secrets(std::string_view url);

}  // namespace kumo
