#include "planner/config/schema.h"

#include <stdexcept>

namespace kumo {
namespace {

using json = nlohmann::json;

json ref(const char* def) {
  return {{"$ref", std::string("#/$defs/") + def}};
}

// A value that may also be written as "${var.x}" / "${file(...)}" and checked after expansion.
json or_expr(json schema) {
  return {{"anyOf", json::array({std::move(schema), ref("expr")})}};
}

json described(json schema, const char* text) {
  schema["description"] = text;
  return schema;
}

json str(const char* text) {
  return described({{"type", "string"}}, text);
}
// YAML 1.1 readers (and kumo) also take yes/no/on/off.
json boolean(const char* text) {
  json words = {{"type", "string"},
                {"pattern",
                 "^(true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$"}};
  return described({{"anyOf", json::array({{{"type", "boolean"}}, words, ref("expr")})}}, text);
}
json enum_of(std::initializer_list<const char*> values, const char* text) {
  json e = json::array();
  for (auto* v : values) e.push_back(v);
  return described(or_expr({{"type", "string"}, {"enum", e}}), text);
}

json object(json properties, json required = json::array()) {
  json o = {
      {"type", "object"}, {"additionalProperties", false}, {"properties", std::move(properties)}};
  if (!required.empty()) o["required"] = std::move(required);
  return o;
}

json map_of(const char* def, const char* text) {
  return described(
      {{"type", "object"},
       {"propertyNames", ref("name")},
       {"additionalProperties", {{"anyOf", json::array({ref(def), {{"type", "null"}}})}}}},
      text);
}

json hostname_map_of(const char* def, const char* text) {
  json m = map_of(def, text);
  m["propertyNames"] = ref("hostname");
  return m;
}

json vm_properties() {
  return {
      {"count", described(or_expr({{"type", "integer"}, {"minimum", 1}}),
                          "Number of instances, named <vm>-0, <vm>-1, ... Without it: one VM "
                          "named <vm>.")},
      {"image",
       str("Name of an entry in images: the VM's root disk is a copy-on-write overlay on it.")},
      {"cpus",
       described(or_expr({{"type", "integer"}, {"minimum", 1}}), "Virtual CPUs (default 1).")},
      {"memory", described(ref("size"), "Memory, e.g. 512MiB or 2GiB (default 512MiB).")},
      {"disk", described(ref("size"), "Root disk size, e.g. 20G (grown from the image's size).")},
      {"disks",
       described({{"type", "object"},
                  {"propertyNames", ref("name")},
                  {"additionalProperties",
                   {{"anyOf", json::array({ref("size"),
                                           object({{"size", ref("size")},
                                                   {"pool", str("Storage pool of this disk "
                                                                "(default: the host's pool).")}},
                                                  {"size"})})}}}},
                 "Extra data disks: name -> size, or {size, pool}. Kept when the VM is "
                 "recreated.")},
      {"networks",
       described(
           {{"type", "array"},
            {"items", {{"anyOf", json::array({str("Network name."), ref("nic")})}}}},
           "Networks to attach, in order: names, or {network, ip, mac} for static addresses.")},
      {"host", str("Pin the VM to this host (a name under hosts).")},
      {"placement",
       described(
           {{"anyOf", json::array({enum_of({"spread", "pack"}, "Strategy."), ref("placement")})}},
           "Where new instances go: spread (default), pack, or "
           "{strategy, anti_affinity: <group>}.")},
      {"running", boolean("Whether the VM should be running (default true).")},
      {"autostart", boolean("Start the VM when its host boots (default true).")},
      {"move", enum_of({"auto", "live", "cold"},
                       "How the VM moves to another host: auto (default: live when it runs and "
                       "both hosts allow it, else cold), live (or the plan fails), cold (shut "
                       "down, disks copied, started there).")},
      {"firmware", enum_of({"bios", "uefi"},
                           "bios (default: SeaBIOS, machine pc) or uefi (OVMF, machine q35, a "
                           "per-VM NVRAM). Changing it recreates the VM.")},
      {"secure_boot", boolean("UEFI secure boot with the standard keys enrolled (needs "
                              "firmware: uefi; default false). Changing it recreates the VM.")},
      {"tpm", boolean("An emulated TPM 2.0 (swtpm) whose state lives with the VM (default "
                      "false). Changing it recreates the VM.")},
      {"cache", enum_of({"none", "writeback", "writethrough", "directsync", "unsafe"},
                        "The disks' host cache mode (default none: O_DIRECT with io=native, "
                        "the guest's own cache is the only one). Changing it restarts the VM.")},
      {"adopt", str("Take over this domain, made by hand on host: (no image, no cloud-init; "
                    "kumo import HOST/DOMAIN prints the whole entry).")},
      {"volumes",
       described({{"type", "array"},
                  {"items", object({{"pool", str("Storage pool.")},
                                    {"volume", str("Volume in that pool.")},
                                    {"path", str("A file that is no pool's volume.")}})}},
                 "An adopted VM's disks, in order: {pool, volume} or {path}.")},
      {"cloud_init", ref("cloud_init")},
      {"lifecycle", ref("lifecycle")},
      {"ssh", ref("ssh")},
      {"wait_for",
       enum_of({"none", "running", "agent", "cloud-init"},
               "What apply waits for before calling the VM ready (default cloud-init).")},
      {"wait_timeout",
       described(ref("duration"), "How long apply waits for readiness (default 10m).")},
  };
}

json build_schema() {
  json defs;
  defs["expr"] = described({{"type", "string"}, {"pattern", "\\$\\{(var\\.|file\\()"}},
                           "An expression: ${var.NAME} or ${file(PATH)}.");
  defs["name"] = {{"type", "string"}, {"pattern", "^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$"}};
  defs["hostname"] = {{"type", "string"}, {"pattern", "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"}};
  defs["size"] =
      or_expr({{"type", "string"},
               {"pattern", "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)\\s*(K|KiB|M|MiB|G|GiB|T|TiB)$"}});
  defs["duration"] = or_expr({{"type", "string"}, {"pattern", "^([0-9]+[smh])+$"}});
  defs["variable"] = described(
      object(
          {{"default", described({{"type", json::array({"string", "number", "boolean", "null"})}},
                                 "Value used when none is given.")},
           {"description", str("What the variable is for.")},
           {"sensitive",
            described({{"type", "boolean"}}, "Never print the value (plan shows (sensitive)).")}}),
      "A variable, used as ${var.NAME}; set with -var NAME=VALUE, --var-file or KUMO_VAR_NAME.");
  defs["host"] = described(
      object({{"uri", str("libvirt URI: qemu:///system, qemu+ssh://user@host/system, "
                          "qemu+unix:///system?socket=..., test:///default.")},
              {"pool", str("Storage pool for disks, images and kumo's lock (default: default): "
                           "one of pools:, or one the host has.")},
              {"pools", described({{"type", "object"},
                                   {"propertyNames", ref("name")},
                                   {"additionalProperties", ref("pool")}},
                                  "Storage pools kumo makes and owns on this host.")},
              {"virt_type", enum_of({"auto", "kvm", "qemu"},
                                    "auto = KVM when the host offers it; qemu forces emulation.")},
              {"cpu_overcommit", described(or_expr({{"type", "number"}, {"exclusiveMinimum", 0}}),
                                           "vCPUs placed per host CPU (default 4).")},
              {"memory_overcommit",
               described(or_expr({{"type", "number"}, {"exclusiveMinimum", 0}}),
                         "Guest memory placed per byte of host memory (default 1).")},
              {"ssh_jump", ref("ssh_jump")},
              {"drain", boolean("Empty this host: nothing new goes here, its unpinned VMs move "
                                "to other hosts (live where possible); VMs pinned here are a "
                                "plan error.")},
              {"migration", ref("migration")}},
             {"uri"}),
      "A libvirt host.");
  defs["pool"] = described(
      {{"oneOf",
        json::array(
            {object({{"type", enum_of({"dir"}, "A directory of files.")},
                     {"path", str("The directory (absolute); made by kumo when missing.")}},
                    {"type", "path"}),
             object({{"type", enum_of({"logical"}, "An LVM volume group named like the pool.")},
                     {"devices", described({{"type", "array"},
                                            {"minItems", 1},
                                            {"items", str("A block device under /dev.")}},
                                           "Its physical volumes; must hold no data.")}},
                    {"type", "devices"})})}},
      "A storage pool kumo makes: type dir with a path, or type logical on devices.");
  defs["image"] = described(
      object({{"url", str("Where to download it: https://, http:// or file://.")},
              {"path", str("A local file (relative to this file).")},
              {"checksum", str("sha256:<hex>, sha512:<hex>, or none (never verified; warned).")},
              {"checksum_url", str("A SHA256SUMS/SHA512SUMS file listing the image's file name.")},
              {"format", enum_of({"qcow2", "raw"}, "Disk format (detected when omitted).")},
              {"ca_bundle", str("PEM file of CA certificates trusted for this image's downloads.")},
              {"max_size",
               described(ref("size"), "The most a download of it may bring (default 64GiB).")}}),
      "A base cloud image.");
  defs["network"] = described(
      object(
          {{"mode", enum_of({"nat", "isolated", "route", "bridge"}, "Network mode (default nat).")},
           {"cidr", str("IPv4 block, e.g. 10.10.0.0/24; the host takes the first address.")},
           {"dhcp",
            described(
                {{"anyOf", json::array({{{"type", "boolean"}},
                                        ref("expr"),
                                        object({{"range", str("start-end, e.g. "
                                                              "10.10.0.100-10.10.0.200")}})})}},
                "DHCP (default on; range defaults to the upper half of cidr).")},
           {"domain", str("DNS domain; VMs resolve each other by name within it.")},
           {"bridge", str("For mode bridge: an existing bridge on the host.")},
           {"hosts", described({{"type", "array"}, {"items", str("Host name.")}},
                               "Hosts that get this network (default: all).")},
           {"mtu", described(or_expr({{"type", "integer"}, {"minimum", 576}, {"maximum", 9216}}),
                             "Interface MTU.")},
           {"dns_hosts",
            described({{"type", "object"}, {"additionalProperties", str("IPv4 address.")}},
                      "Extra DNS names served on this network (name: address); changed live.")}}),
      "A virtual network.");
  defs["nic"] = object(
      {{"network", str("Network name (an entry of networks:).")},
       {"bridge", str("A bridge the host already has (e.g. br0), instead of a network.")},
       {"direct", str("A host interface (e.g. eth1): the NIC is a macvtap on it, instead of a "
                      "network.")},
       {"mode", enum_of({"bridge", "vepa", "private", "passthrough"},
                        "direct: the macvtap mode (default bridge).")},
       {"model", str("NIC model (default virtio; e1000e, rtl8139 for guests without virtio).")},
       {"queues", described(or_expr({{"type", "integer"}, {"minimum", 1}, {"maximum", 256}}),
                            "virtio multiqueue: queue pairs (default: one per vCPU).")},
       {"ip", str("Static IPv4 address (with count: the first; instance i gets +i).")},
       {"mac", str("MAC address (with count: instance i gets +i).")}});
  defs["nic"]["oneOf"] = json::array(
      {{{"required", {"network"}}}, {{"required", {"bridge"}}}, {{"required", {"direct"}}}});
  defs["placement"] =
      object({{"strategy", enum_of({"spread", "pack"}, "spread (default) or pack.")},
              {"anti_affinity", str("Group: never two of its members on one host.")}});
  defs["cloud_init"] = described(
      object(
          {{"user_data", str("A whole user-data document, used as-is.")},
           {"user_data_file", str("File holding the whole user-data (relative to this file).")},
           {"ssh_authorized_keys", described({{"type", "array"}, {"items", {{"type", "string"}}}},
                                             "Public keys for the default user.")},
           {"packages", described({{"type", "array"}, {"items", {{"type", "string"}}}},
                                  "Packages to install on first boot.")},
           {"runcmd", described({{"type", "array"}}, "Commands run on first boot.")},
           {"write_files",
            described({{"type", "array"}, {"items", {{"type", "object"}}}},
                      "Files written on first boot: {path, content, owner, permissions, ...}.")},
           {"users", described({{"type", "array"}}, "Users to create (cloud-init users format).")},
           {"network_config", described({{"type", "object"}}, "cloud-init network config (v2).")}}),
      "cloud-init for the VM; shorthand keys are merged into user_data.");
  defs["lifecycle"] =
      object({{"prevent_destroy", boolean("Refuse any plan that would destroy this VM.")},
              {"on_user_data_change",
               enum_of({"recreate", "ignore"},
                       "recreate (default): new instance; ignore: only the seed changes.")}});
  defs["ssh"] = described(
      object({{"user", str("Login name (default: the first user in cloud_init users, else root).")},
              {"identity_file", str("Private key file (relative to this file; default: ssh's "
                                    "own keys and agent).")}}),
      "How kumo ssh and kumo inventory log in to VMs; never changes a plan.");
  defs["ssh_jump"] = described(
      {{"anyOf",
        json::array(
            {str("direct (connect straight to VMs' addresses), or [user@]host[:port]."),
             object({{"host", str("Jump host name or address.")},
                     {"user", str("Login name on the jump host.")},
                     {"port", described({{"type", "integer"}, {"minimum", 1}, {"maximum", 65535}},
                                        "ssh port (default 22).")},
                     {"identity_file", str("Private key for the jump host.")}},
                    {"host"})})}},
      "How kumo ssh reaches VMs on NAT, isolated or routed networks inside this host "
      "(default: through the host itself, as its qemu+ssh URI says).");
  defs["migration"] = described(
      object({{"socket_dir", str("Absolute directory every host's libvirtd sees (the same "
                                 "machine, a lab): memory and disks travel over unix sockets "
                                 "there.")},
              {"address", str("Host name or IP the other hosts reach this one at (tcp).")}}),
      "How a live move reaches this host, as its destination: one of socket_dir or address "
      "(default: libvirt's choice, the host's own hostname).");
  defs["vm"] = described(object(vm_properties()), "A VM, or with count a group of identical VMs.");
  json defaults_properties = vm_properties();
  defaults_properties.erase("count");
  defs["defaults"] =
      described(object(defaults_properties), "Fields applied to every VM that does not set them.");

  json root = object(
      {{"cluster", described(or_expr(ref("hostname")),
                             "The cluster's name; every object kumo makes is tagged with it.")},
       {"variables", map_of("variable", "Variables: name -> {default, description, sensitive}.")},
       {"hosts", map_of("host",
                        "libvirt hosts. Without it: one host 'local' at $LIBVIRT_DEFAULT_URI "
                        "or qemu:///system.")},
       {"images", map_of("image", "Base images by name.")},
       {"networks", map_of("network", "Networks by name.")},
       {"defaults", ref("defaults")},
       {"ssh", ref("ssh")},
       {"vms", hostname_map_of("vm", "VMs by name (each name is a hostname).")}},
      {"cluster"});
  root["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  root["$id"] = "https://kumo.invalid/schema/kumo-v1.json";
  root["title"] = "kumo cluster description (kumo.yaml), format v1";
  root["$defs"] = std::move(defs);
  return root;
}

}  // namespace

const nlohmann::json& config_schema() {
  static const json schema = build_schema();
  return schema;
}

std::vector<std::string> schema_keys(std::string_view def) {
  const json& s = config_schema();
  const json& node = def.empty() ? s : s.at("$defs").at(std::string(def));
  std::vector<std::string> keys;
  for (auto& [k, v] : node.at("properties").items()) keys.push_back(k);
  return keys;
}

}  // namespace kumo
