// The steps of an apply, one function per step kind, grouped by what they act on:
// steps_image.cpp, steps_network.cpp, steps_volume.cpp, steps_vm.cpp. Each either returns a
// detail for the finished line or throws an error that names the host and the object.
#pragma once

#include <string>

#include "planner/exec/context.h"

namespace kumo::exec {

std::string fetch_image(ExecContext& ctx, const Task& t);
std::string upload_image(ExecContext& ctx, const Task& t);
std::string check_image(ExecContext& ctx, const Task& t);

std::string apply_pool(ExecContext& ctx, const Task& t);  // steps_pool.cpp
std::string delete_pool(ExecContext& ctx, const Task& t);
std::string apply_network(ExecContext& ctx, const Task& t);
std::string delete_network(ExecContext& ctx, const Task& t);

std::string delete_volume(ExecContext& ctx, const Task& t);
std::string create_root(ExecContext& ctx, const Task& t);
std::string upload_seed(ExecContext& ctx, const Task& t);
std::string create_data(ExecContext& ctx, const Task& t);
std::string grow_disk(ExecContext& ctx, const Task& t);
std::string refuse_disk(ExecContext& ctx, const Task& t);

std::string delete_vm(ExecContext& ctx, const Task& t);
std::string remove_old_vm(ExecContext& ctx, const Task& t);
std::string shutdown_vm(ExecContext& ctx, const Task& t);
std::string define_vm(ExecContext& ctx, const Task& t);
std::string update_vm(ExecContext& ctx, const Task& t);
// A hand-made domain becomes this cluster's: checked to be the one planned and still nobody's,
// renamed when the file names it otherwise (only while shut off), then marked (metadata only).
std::string adopt_vm(ExecContext& ctx, const Task& t);
std::string start_vm(ExecContext& ctx, const Task& t);
std::string wait_vm(ExecContext& ctx, const Task& t);

// steps_move.cpp: a VM moving to another host (the change's host; the source is
// change->observed->host).
std::string move_shutdown(ExecContext& ctx, const Task& t);
std::string move_prepare(ExecContext& ctx, const Task& t);
std::string move_migrate(ExecContext& ctx, const Task& t);
std::string move_copy(ExecContext& ctx, const Task& t);
std::string move_define(ExecContext& ctx, const Task& t);
std::string move_commit(ExecContext& ctx, const Task& t);
std::string move_remove_source(ExecContext& ctx, const Task& t);

// steps_vm.cpp: the definition kumo gives the VM of change `c` on its host (room to grow live).
DomainSpec vm_domain_spec(ExecContext& ctx, const ResourceChange& c, HostSession& s, bool ready);

}  // namespace kumo::exec
