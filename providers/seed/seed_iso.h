// The cloud-init NoCloud seed: a small ISO 9660 image labelled "cidata" holding user-data,
// meta-data and optionally network-config at its root. Built in process with libisofs (no
// mkisofs/genisoimage, no temporary files), byte for byte reproducible.
#pragma once

#include <string>
#include <vector>

namespace kumo::seed {

struct SeedFile {
  std::string name;
  std::string content;
};

// An ISO 9660 image with Rock Ridge and Joliet (so names keep their case and dashes) whose
// volume id is `volume_id` (cloud-init looks for "cidata"), holding `files` at its root, each
// mode 0444 owned by 0:0. The volume id is recorded as given in both the primary and the Joliet
// volume descriptor, so `blkid` reports it unchanged (LABEL=cidata, TYPE=iso9660).
// Deterministic: the same input gives byte-identical output (every timestamp is the Unix epoch,
// no random serials, independent of the locale and time zone).
// Throws std::runtime_error for an invalid name or volume id (checked before libisofs sees
// them), and with libisofs's message (iso_error_to_msg) when libisofs fails.
// Safe to call from several threads; calls are serialized internally (libisofs keeps
// unsynchronized global counters).
std::string build_iso(const std::vector<SeedFile>& files, const std::string& volume_id = "cidata");

// The NoCloud seed: user-data, meta-data and, when not empty, network-config.
std::string build_nocloud_seed(const std::string& user_data, const std::string& meta_data,
                               const std::string& network_config);

}  // namespace kumo::seed
