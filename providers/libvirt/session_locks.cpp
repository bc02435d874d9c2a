// The cluster lock's records as libvirt secrets (host_session.h says why not volumes): found by
// their usage, the record's name; the text in the description. Defining a secret whose usage
// another secret has is refused by libvirt under its list's lock, which makes creating one a
// mutex, as creating a volume is. On a host without a secret driver (libvirt's test driver),
// the records are volumes, as HostSession makes them.
//
// A session keeps the handle of each record it made or read: libvirt finds a secret's handle by
// its UUID, which a record made anew does not have, so the handle answers for the very record
// this session saw (one call, no lookup), and "no such secret" once it is gone; the record is
// then looked up again by its name. A delete removes the record this session saw last: not one
// another kumo made meanwhile.
#include "providers/digest.h"
#include "providers/libvirt/session_impl.h"

namespace kumo::libvirt {
namespace {

std::string lock_label(const std::string& name) {
  return "the lock record " + name + " (a libvirt secret)";
}

}  // namespace

SecretHandle LibvirtSession::find_lock_secret(const std::string& name) {
  if (secrets_unsupported_) return {};
  SecretHandle secret(
      virSecretLookupByUsage(conn_.get(), VIR_SECRET_USAGE_TYPE_VOLUME, name.c_str()));
  if (secret) return secret;
  const auto error = last_error();
  if (error.code == VIR_ERR_NO_SUPPORT) secrets_unsupported_ = true;
  if (error.code != VIR_ERR_NO_SECRET && error.code != VIR_ERR_NO_SUPPORT) {
    fail_because("looking up " + lock_label(name), error.message);
  }
  virResetLastError();
  return {};
}

LibvirtSession::SharedSecret LibvirtSession::kept_lock_secret(const std::string& name) {
  const std::lock_guard lock(lock_secrets_mu_);
  const auto it = lock_secrets_.find(name);
  return it == lock_secrets_.end() ? nullptr : it->second;
}

void LibvirtSession::keep_lock_secret(const std::string& name, SecretHandle secret) {
  SharedSecret shared(secret.release(), SecretFreer{});
  const std::lock_guard lock(lock_secrets_mu_);
  lock_secrets_.insert_or_assign(name, std::move(shared));
}

void LibvirtSession::drop_lock_secret(const std::string& name, const SharedSecret& which) {
  const std::lock_guard lock(lock_secrets_mu_);
  const auto it = lock_secrets_.find(name);
  if (it != lock_secrets_.end() && (!which || it->second == which)) lock_secrets_.erase(it);
}

std::string LibvirtSession::lock_secret_xml(const std::string& name) {
  for (;;) {
    SharedSecret secret = kept_lock_secret(name);
    const bool kept = secret != nullptr;
    if (!kept) {
      auto found = find_lock_secret(name);
      if (!found) return "";
      keep_lock_secret(name, std::move(found));
      secret = kept_lock_secret(name);
      if (!secret) continue;
    }
    std::string xml = adopt_string(virSecretGetXMLDesc(secret.get(), 0));
    if (!xml.empty()) return xml;
    vanished_or_fail<void>(VIR_ERR_NO_SECRET, "reading " + lock_label(name));
    drop_lock_secret(name, secret);
    if (!kept) return "";  // looked up just now, and gone already
  }
}

bool LibvirtSession::create_lock_record(const std::string& name, const std::string& text) {
  if (!secrets_unsupported_) {
    const std::string xml = libvirt::lock_secret_xml(name, text);
    for (int attempt = 1;; ++attempt) {
      SecretHandle made(virSecretDefineXML(conn_.get(), xml.c_str(), 0));
      if (made) {
        keep_lock_secret(name, std::move(made));
        return true;
      }
      const auto error = last_error();
      if (error.code == VIR_ERR_NO_SUPPORT) {
        secrets_unsupported_ = true;
        virResetLastError();
        break;
      }
      // Refused because a secret of that usage exists (libvirt words it as an internal error):
      // whether one is there is what counts. None: it went meanwhile, so once more.
      drop_lock_secret(name);
      if (auto there = find_lock_secret(name)) {
        keep_lock_secret(name, std::move(there));
        return false;
      }
      if (attempt >= 3) fail_because("making " + lock_label(name), error.message);
    }
  }
  return HostSession::create_lock_record(name, text);
}

std::optional<std::string> LibvirtSession::read_lock_record(const std::string& name,
                                                            std::size_t max_bytes) {
  if (!secrets_unsupported_) {
    const std::string xml = lock_secret_xml(name);
    if (!secrets_unsupported_) {
      if (xml.empty()) return std::nullopt;
      auto text = parse_lock_secret_xml(xml);
      if (!text) unreadable(lock_label(name));
      if (text->size() > max_bytes) text->resize(max_bytes);
      return text;
    }
  }
  return HostSession::read_lock_record(name, max_bytes);
}

std::optional<std::string> LibvirtSession::lock_record_stamp(const std::string& name) {
  if (!secrets_unsupported_) {
    // Its UUID (new each time it is made) and its text, both in its XML.
    const std::string xml = lock_secret_xml(name);
    if (!secrets_unsupported_) {
      if (xml.empty()) return std::nullopt;
      return sha256_hex(xml);
    }
  }
  return HostSession::lock_record_stamp(name);
}

void LibvirtSession::delete_lock_record(const std::string& name) {
  if (!secrets_unsupported_) {
    SharedSecret secret = kept_lock_secret(name);
    if (!secret) {
      auto found = find_lock_secret(name);
      if (found) secret = SharedSecret(found.release(), SecretFreer{});
    }
    if (!secrets_unsupported_) {
      if (!secret) return;  // none
      drop_lock_secret(name, secret);
      if (virSecretUndefine(secret.get()) < 0) {
        vanished_or_fail<void>(VIR_ERR_NO_SECRET, "removing " + lock_label(name));
      }
      return;
    }
  }
  HostSession::delete_lock_record(name);
}

}  // namespace kumo::libvirt
