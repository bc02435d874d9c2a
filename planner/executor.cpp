#include "planner/executor.h"

#include <algorithm>

#include "planner/exec/graph.h"
#include "planner/exec/scheduler.h"
#include "planner/exec/steps.h"

namespace kumo {

const char* to_string(StepStatus s) {
  switch (s) {
    case StepStatus::Pending:
      return "pending";
    case StepStatus::Running:
      return "running";
    case StepStatus::Ok:
      return "ok";
    case StepStatus::Failed:
      return "failed";
    case StepStatus::Skipped:
      return "skipped";
  }
  return "?";
}

int ExecResult::count(StepStatus s) const {
  return static_cast<int>(std::count_if(steps.begin(), steps.end(),
                                        [&](const StepOutcome& o) { return o.status == s; }));
}

namespace exec {

std::string run_step(ExecContext& ctx, const Task& t) {
  switch (t.kind) {
    case StepKind::FetchImage:
      return fetch_image(ctx, t);
    case StepKind::UploadImage:
      return upload_image(ctx, t);
    case StepKind::CheckImage:
      return check_image(ctx, t);
    case StepKind::ApplyNetwork:
      return apply_network(ctx, t);
    case StepKind::DeleteNetwork:
      return delete_network(ctx, t);
    case StepKind::DeleteVolume:
      return delete_volume(ctx, t);
    case StepKind::DeleteVm:
      return delete_vm(ctx, t);
    case StepKind::RemoveOldVm:
      return remove_old_vm(ctx, t);
    case StepKind::ShutdownVm:
      return shutdown_vm(ctx, t);
    case StepKind::CreateRoot:
      return create_root(ctx, t);
    case StepKind::UploadSeed:
      return upload_seed(ctx, t);
    case StepKind::CreateData:
      return create_data(ctx, t);
    case StepKind::GrowDisk:
      return grow_disk(ctx, t);
    case StepKind::RefuseDisk:
      return refuse_disk(ctx, t);
    case StepKind::DefineVm:
      return define_vm(ctx, t);
    case StepKind::UpdateVm:
      return update_vm(ctx, t);
    case StepKind::StartVm:
      return start_vm(ctx, t);
    case StepKind::WaitVm:
      return wait_vm(ctx, t);
    case StepKind::MoveShutdown:
      return move_shutdown(ctx, t);
    case StepKind::MovePrepare:
      return move_prepare(ctx, t);
    case StepKind::MoveMigrate:
      return move_migrate(ctx, t);
    case StepKind::MoveCopy:
      return move_copy(ctx, t);
    case StepKind::MoveDefine:
      return move_define(ctx, t);
    case StepKind::MoveCommit:
      return move_commit(ctx, t);
    case StepKind::MoveRemoveSource:
      return move_remove_source(ctx, t);
    case StepKind::AdoptVm:
      return adopt_vm(ctx, t);
    case StepKind::ApplyPool:
      return apply_pool(ctx, t);
    case StepKind::DeletePool:
      return delete_pool(ctx, t);
  }
  throw HostError(std::string("internal error: no step for ") + to_string(t.kind));
}

// Steps that change their host (all but those that only read it, or run here): the CLI's check
// that the lock there is still this run's comes before each of them.
bool changes_host(const Task& t) {
  return !t.host.empty() && t.kind != StepKind::CheckImage;
}

// Runs options.before_change for `t`; a stop says which step it came before.
void check_before(ExecContext& ctx, const Task& t) {
  const auto& check = ctx.options().before_change;
  if (!check || !changes_host(t)) return;
  try {
    check(t.host, ctx.session(t.host));
  } catch (const ApplyStopped& e) {
    throw ApplyStopped(std::string(e.what()) + "; stopped before " + t.what + " " + t.address +
                       " on " + t.host + " (no step started after it)");
  }
}

}  // namespace exec

ExecResult execute(const Plan& plan, HostConnector& connector, const ImageFetcher& fetch,
                   const ExecOptions& options, const ExecListener& listener) {
  const exec::TaskGraph graph = exec::build_graph(plan);
  exec::EventSink sink(listener);
  exec::ExecContext ctx(plan, connector, fetch, options, sink);
  const exec::Limits limits{options.parallelism, options.per_host, options.uploads_per_host};
  ExecResult result;
  const auto states = exec::run_graph(
      graph, limits,
      [&](const exec::Task& t) {
        exec::check_before(ctx, t);
        return exec::run_step(ctx, t);
      },
      sink, &result.stopped);
  for (std::size_t i = 0; i < graph.tasks.size(); ++i) {
    const auto& t = graph.tasks[i];
    result.steps.push_back(
        {t.id, t.address, t.host, t.what, states[i].status, states[i].message, states[i].seconds});
  }
  result.vms = ctx.ready_vms();
  result.seconds = exec::since(ctx.started());
  return result;
}

}  // namespace kumo
