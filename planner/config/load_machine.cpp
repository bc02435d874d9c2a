// A VM's machine: firmware, secure_boot, tpm, and its disks' cache mode. Part of the loader
// (apply_vm_fields asks here first; finish_machine checks what only the whole VM can tell).
#include "planner/config/loader_internal.h"

namespace kumo::detail {

bool apply_machine_field(Reader& r, const std::string& k, const YAML::Node& f,
                         const std::string& fw, VmConfig& vm) {
  if (k == "firmware") {
    if (auto v = r.choice<Firmware>(f, fw, {{"bios", Firmware::Bios}, {"uefi", Firmware::Uefi}}))
      vm.firmware = *v;
  } else if (k == "secure_boot") {
    if (auto b = r.boolean(f, fw)) {
      vm.secure_boot = *b;
      vm.secure_boot_location = r.loc(f);
    }
  } else if (k == "tpm") {
    if (auto b = r.boolean(f, fw)) vm.tpm = *b;
  } else if (k == "cache") {
    if (auto v = r.choice<std::string>(f, fw,
                                       {{"none", ""},
                                        {"writeback", "writeback"},
                                        {"writethrough", "writethrough"},
                                        {"directsync", "directsync"},
                                        {"unsafe", "unsafe"}}))
      vm.cache = *v;
  } else {
    return false;
  }
  return true;
}

void finish_machine(Reader& r, const std::string& where, VmConfig& vm) {
  if (vm.secure_boot && vm.firmware != Firmware::Uefi) {
    r.diagnostics().error(vm.secure_boot_location,
                          where +
                              ": secure_boot: true needs firmware: uefi (secure boot is a UEFI "
                              "feature; SeaBIOS has none). Add firmware: uefi, or drop "
                              "secure_boot");
  }
}

}  // namespace kumo::detail
