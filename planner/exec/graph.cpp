#include "planner/exec/graph.h"

#include <set>

namespace kumo::exec {

const char* to_string(StepKind k) {
  switch (k) {
    case StepKind::FetchImage:
      return "fetch image";
    case StepKind::UploadImage:
      return "upload image";
    case StepKind::CheckImage:
      return "check image";
    case StepKind::ApplyNetwork:
      return "apply network";
    case StepKind::DeleteNetwork:
      return "delete network";
    case StepKind::DeleteVolume:
      return "delete volume";
    case StepKind::DeleteVm:
      return "delete vm";
    case StepKind::RemoveOldVm:
      return "remove old vm";
    case StepKind::ShutdownVm:
      return "shutdown vm";
    case StepKind::CreateRoot:
      return "create root";
    case StepKind::UploadSeed:
      return "upload seed";
    case StepKind::CreateData:
      return "create data";
    case StepKind::GrowDisk:
      return "grow disk";
    case StepKind::RefuseDisk:
      return "refuse disk";
    case StepKind::DefineVm:
      return "define vm";
    case StepKind::UpdateVm:
      return "update vm";
    case StepKind::StartVm:
      return "start vm";
    case StepKind::WaitVm:
      return "wait vm";
    case StepKind::MoveShutdown:
      return "move: shutdown";
    case StepKind::MovePrepare:
      return "move: prepare";
    case StepKind::MoveMigrate:
      return "move: migrate";
    case StepKind::MoveCopy:
      return "move: copy";
    case StepKind::MoveDefine:
      return "move: define";
    case StepKind::MoveCommit:
      return "move: commit";
    case StepKind::MoveRemoveSource:
      return "move: remove source";
    case StepKind::AdoptVm:
      return "adopt vm";
    case StepKind::ApplyPool:
      return "apply pool";
    case StepKind::DeletePool:
      return "delete pool";
  }
  return "?";
}

std::optional<std::size_t> TaskGraph::find(const std::string& id) const {
  auto it = index.find(id);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

namespace {

class Builder {
 public:
  explicit Builder(const Plan& plan) : plan_(plan) {}

  TaskGraph build() {
    for (const auto& c : plan_.changes) {
      if (c.kind() == ResourceKind::Volume && c.parent)
        children_[c.host + "/" + c.parent->str()].push_back(&c);
    }
    // Pools first: every other step on their host waits for them (a pool kumo makes is where
    // that host's images, disks and lock go).
    for (const auto& c : plan_.changes) {
      if (c.kind() == ResourceKind::Pool && c.action != Action::Delete)
        add(step(c, c.action == Action::Create ? "create" : "start", StepKind::ApplyPool));
    }
    const std::size_t first_other = graph_.tasks.size();
    for (const auto& im : plan_.images) image(im);
    for (const auto& c : plan_.changes) {
      if (c.kind() == ResourceKind::Network && c.action != Action::Delete) network(c);
    }
    // Deletes, and updates that shrink a VM, make room on their host: built first, so the
    // starts of the VMs placed into that room can wait for them.
    for (const auto& c : plan_.changes) {
      if (c.kind() == ResourceKind::Vm && c.action == Action::Delete) vm_delete(c);
    }
    for (bool shrinks : {true, false}) {
      for (const auto& c : plan_.changes) {
        if (c.kind() == ResourceKind::Vm && c.action == Action::Update &&
            c.steps.frees_room == shrinks)
          vm_update(c);
      }
    }
    for (const auto& c : plan_.changes) {
      if (c.kind() == ResourceKind::Vm && c.action == Action::Move) vm_move(c);
      if (c.kind() == ResourceKind::Vm && c.action == Action::Adopt)
        add(step(c, "adopt", StepKind::AdoptVm));
    }
    for (const auto& c : plan_.changes) {
      if (c.kind() == ResourceKind::Vm &&
          (c.action == Action::Create || c.action == Action::Replace))
        vm_create(c);
    }
    for (const auto& c : plan_.changes) {
      if (c.kind() == ResourceKind::Volume && !c.parent && c.action == Action::Delete)
        add(step(c, "delete", StepKind::DeleteVolume));
      if (c.kind() == ResourceKind::Network && c.action == Action::Delete) {
        Task t = step(c, "delete", StepKind::DeleteNetwork);
        t.deps = vm_deletes_[c.host];
        add(std::move(t));
      }
    }
    for (std::size_t i = first_other; i < graph_.tasks.size(); ++i) {
      Task& t = graph_.tasks[i];
      for (std::size_t p = 0; p < first_other; ++p) {
        if (!t.host.empty() && graph_.tasks[p].host == t.host) t.deps.push_back(p);
      }
    }
    // Pools kumo removes go last on their host, once nothing else there runs.
    for (const auto& c : plan_.changes) {
      if (c.kind() != ResourceKind::Pool || c.action != Action::Delete) continue;
      Task t = step(c, "delete", StepKind::DeletePool);
      for (std::size_t i = 0; i < graph_.tasks.size(); ++i) {
        if (graph_.tasks[i].host == c.host) t.deps.push_back(i);
      }
      add(std::move(t));
    }
    return std::move(graph_);
  }

 private:
  std::size_t add(Task t) {
    const std::size_t i = graph_.tasks.size();
    graph_.index[t.id] = i;
    graph_.tasks.push_back(std::move(t));
    return i;
  }

  static Task step(const ResourceChange& c, const std::string& what, StepKind kind) {
    Task t;
    t.id = c.host + "/" + c.address.str() + "/" + what;
    t.address = c.address.str();
    t.host = c.host;
    t.what = what;
    t.kind = kind;
    t.change = &c;
    return t;
  }

  void image(const ImagePlan& im) {
    std::optional<std::size_t> fetch;
    const std::string address = "image." + im.name;
    if (!im.upload_to.empty()) {
      Task t;
      t.id = "local/" + address + "/fetch";
      t.address = address;
      t.what = im.cached ? "verify cache" : "download";
      t.kind = StepKind::FetchImage;
      t.image = &im;
      fetch = add(std::move(t));
    }
    auto on_host = [&](const std::string& host, const char* what, StepKind kind) {
      Task t;
      t.id = host + "/" + address + "/" + what;
      t.address = address;
      t.host = host;
      t.what = what;
      t.kind = kind;
      t.image = &im;
      return t;
    };
    for (const auto& host : im.upload_to) {
      Task t = on_host(host, "upload", StepKind::UploadImage);
      t.slot = Slot::Upload;
      t.deps = {*fetch};
      add(std::move(t));
    }
    for (const auto& host : im.present_on) add(on_host(host, "check", StepKind::CheckImage));
  }

  void network(const ResourceChange& c) {
    add(step(c,
             c.action == Action::Create    ? "create"
             : c.action == Action::Replace ? "replace"
                                           : "update",
             StepKind::ApplyNetwork));
  }

  const std::vector<const ResourceChange*>& kids(const ResourceChange& c) {
    return children_[c.host + "/" + c.address.str()];
  }

  void vm_delete(const ResourceChange& c) {
    const std::size_t dom = add(step(c, "delete", StepKind::DeleteVm));
    vm_deletes_[c.host].push_back(dom);
    for (const ResourceChange* k : kids(c)) {
      if (k->action != Action::Delete) continue;
      Task v = step(*k, "delete", StepKind::DeleteVolume);
      v.deps = {dom};
      v.after_vm_delete = c.observed_name() == k->address.parent;  // the domain they go with
      add(std::move(v));
    }
  }

  std::optional<std::size_t> image_step(const std::string& image, const std::string& host) const {
    for (const char* verb : {"upload", "check"}) {
      if (auto i = graph_.find(host + "/image." + image + "/" + verb)) return i;
    }
    return std::nullopt;
  }

  // The volume steps of a new or replaced VM, after `pre`.
  std::vector<std::size_t> new_vm_volumes(const ResourceChange& c,
                                          const std::vector<std::size_t>& pre) {
    std::vector<std::size_t> out;
    for (const ResourceChange* k : kids(c)) {
      Task v;
      if (k->action == Action::Delete) {
        v = step(*k, "delete", StepKind::DeleteVolume);
      } else if (k->action == Action::Update) {
        v = step(*k, "grow", StepKind::GrowDisk);  // the old domain is gone: resized on its own
      } else if (k->address.role() == VolumeRole::Root) {
        v = step(*k, "create", StepKind::CreateRoot);
        if (const auto* p = k->volume()) {
          if (auto img = image_step(p->image, k->host)) v.deps.push_back(*img);
        }
      } else if (k->address.role() == VolumeRole::Seed) {
        v = step(*k, "upload", StepKind::UploadSeed);
        v.slot = Slot::Upload;
      } else {
        v = step(*k, "create", StepKind::CreateData);
      }
      v.recreate = k->action == Action::Replace;
      v.deps.insert(v.deps.end(), pre.begin(), pre.end());
      out.push_back(add(std::move(v)));
    }
    return out;
  }

  // The network steps a VM's definition needs on its host.
  std::vector<std::size_t> network_deps(const ResourceChange& c) const {
    std::vector<std::size_t> out;
    const VmPayload* vm = c.vm();
    if (!vm) return out;
    for (const auto& nic : vm->nics) {
      if (nic.network.empty()) continue;
      for (const auto& n : plan_.changes) {
        const NetworkSpec* spec = n.network();
        if (n.host != c.host || !spec || spec->name != nic.network) continue;
        for (const char* verb : {"create", "replace", "update"}) {
          if (auto i = graph_.find(c.host + "/" + n.address.str() + "/" + verb)) out.push_back(*i);
        }
      }
    }
    return out;
  }

  // What must finish before a VM can start on `host`: that host's VM deletes and shrinks.
  std::vector<std::size_t> room_on(const std::string& host) const {
    std::vector<std::size_t> out;
    if (auto it = vm_deletes_.find(host); it != vm_deletes_.end()) out = it->second;
    if (auto it = vm_shrinks_.find(host); it != vm_shrinks_.end())
      out.insert(out.end(), it->second.begin(), it->second.end());
    return out;
  }

  void vm_create(const ResourceChange& c) {
    std::vector<std::size_t> pre;
    if (c.steps.remove_old) pre.push_back(add(step(c, "remove old", StepKind::RemoveOldVm)));
    Task def = step(c, "define", StepKind::DefineVm);
    def.deps = new_vm_volumes(c, pre);
    def.deps.insert(def.deps.end(), pre.begin(), pre.end());
    for (std::size_t n : network_deps(c)) def.deps.push_back(n);
    const std::size_t defined = add(std::move(def));
    if (c.steps.start) start_and_wait(c, defined, room_on(c.host));
  }

  void start_and_wait(const ResourceChange& c, std::size_t after, std::vector<std::size_t> room) {
    Task start = step(c, "start", StepKind::StartVm);
    start.deps = {after};
    start.deps.insert(start.deps.end(), room.begin(), room.end());
    wait(c, add(std::move(start)));
  }

  // Waits (outside the parallelism limits) until the VM is ready as its wait_for says.
  void wait(const ResourceChange& c, std::size_t after) {
    const WaitFor w = c.vm() ? c.vm()->wait_for : WaitFor::CloudInit;
    Task t = step(c, w == WaitFor::None ? "ready" : std::string("wait for ") + to_string(w),
                  StepKind::WaitVm);
    t.deps = {after};
    t.slot = Slot::Free;
    add(std::move(t));
  }

  // An existing VM changes in place: live when the plan says so; a restart shuts the guest down
  // gracefully first and starts it again once the definition has changed.
  void vm_update(const ResourceChange& c) {
    std::vector<std::size_t> pre;
    if (c.steps.shutdown) pre.push_back(add(step(c, "shutdown", StepKind::ShutdownVm)));
    std::vector<std::size_t> before = pre;
    for (const ResourceChange* k : kids(c)) {
      const VolumeRole role = k->address.role();
      Task v;
      if (role == VolumeRole::Seed &&
          (k->action == Action::Replace || k->action == Action::Create)) {
        v = step(*k, "upload", StepKind::UploadSeed);
        v.slot = Slot::Upload;
        v.recreate = k->action == Action::Replace;
      } else if (k->action == Action::Update) {
        v = step(*k, "grow", StepKind::GrowDisk);
      } else if (k->action == Action::Create && role == VolumeRole::Data) {
        v = step(*k, "create", StepKind::CreateData);
      } else {
        v = step(*k, to_string(k->action), StepKind::RefuseDisk);
        before.push_back(add(std::move(v)));
        continue;
      }
      v.deps = pre;
      before.push_back(add(std::move(v)));
    }
    Task t = step(c, "update", StepKind::UpdateVm);
    t.deps = before;
    const std::size_t updated = add(std::move(t));
    if (c.steps.frees_room) vm_shrinks_[c.host].push_back(updated);
    if (c.steps.start) {
      start_and_wait(c, updated, room_on(c.host));
    } else if (c.steps.wait_ready) {
      wait(c, updated);
    }
  }

  // A step of change `c` on another host than its own (a move's source).
  static Task step_on(const ResourceChange& c, const std::string& host, const std::string& what,
                      StepKind kind) {
    Task t = step(c, what, kind);
    t.id = host + "/" + c.address.str() + "/" + what;
    t.host = host;
    return t;
  }

  // A VM moving to c.host from c.observed->host. The source stays the VM until the copy is
  // verified: live, once the migration finished; cold, once it is ready there. Only then is
  // the source removed.
  //   live: prepare ─▶ (seed, new data disks) ─▶ migrate ─▶ commit ─▶ remove source
  //   cold: shutdown (source) ─┐
  //         prepare ─▶ copy ───┴▶ define ─▶ start ─▶ wait ─▶ commit ─▶ remove source
  void vm_move(const ResourceChange& c) {
    const std::string src = c.observed ? c.observed->host : "";
    Task prep = step(c, "prepare", StepKind::MovePrepare);
    for (const ResourceChange* k : kids(c)) {
      if (const auto* p = k->volume(); p && k->address.role() == VolumeRole::Root) {
        if (auto img = image_step(p->image, c.host)) prep.deps.push_back(*img);
      }
    }
    for (std::size_t n : network_deps(c)) prep.deps.push_back(n);
    const std::size_t prepared = add(std::move(prep));
    std::vector<std::size_t> made{prepared};
    for (const ResourceChange* k : kids(c)) {
      if (k->action != Action::Create) continue;
      Task v = k->address.role() == VolumeRole::Seed ? step(*k, "upload", StepKind::UploadSeed)
                                                     : step(*k, "create", StepKind::CreateData);
      if (k->address.role() == VolumeRole::Seed) v.slot = Slot::Upload;
      v.deps = {prepared};
      made.push_back(add(std::move(v)));
    }
    std::size_t placed = 0;
    if (c.steps.live) {
      Task m = step(c, "migrate", StepKind::MoveMigrate);
      m.deps = made;
      for (std::size_t r : room_on(c.host)) m.deps.push_back(r);
      placed = add(std::move(m));
    } else {
      Task cp = step(c, "copy", StepKind::MoveCopy);
      cp.slot = Slot::Upload;
      cp.deps = {prepared};
      if (c.steps.shutdown)
        cp.deps.push_back(add(step_on(c, src, "shutdown", StepKind::MoveShutdown)));
      const std::size_t copied = add(std::move(cp));
      Task def = step(c, "define", StepKind::MoveDefine);
      def.deps = made;
      def.deps.push_back(copied);
      placed = add(std::move(def));
      if (c.steps.start) {
        Task start = step(c, "start", StepKind::StartVm);
        start.deps = {placed};
        for (std::size_t r : room_on(c.host)) start.deps.push_back(r);
        const std::size_t started = add(std::move(start));
        const WaitFor w = c.vm() ? c.vm()->wait_for : WaitFor::CloudInit;
        Task wt = step(c, w == WaitFor::None ? "ready" : std::string("wait for ") + to_string(w),
                       StepKind::WaitVm);
        wt.deps = {started};
        wt.slot = Slot::Free;
        placed = add(std::move(wt));
      }
    }
    Task commit = step(c, "commit", StepKind::MoveCommit);
    commit.deps = {placed};
    const std::size_t committed = add(std::move(commit));
    Task rm = step_on(c, src, "remove source", StepKind::MoveRemoveSource);
    rm.deps = {committed};
    vm_deletes_[src].push_back(add(std::move(rm)));
  }

  const Plan& plan_;
  TaskGraph graph_;
  std::map<std::string, std::vector<const ResourceChange*>> children_;       // host/vm address
  std::map<std::string, std::vector<std::size_t>> vm_deletes_, vm_shrinks_;  // host -> tasks
};

}  // namespace

TaskGraph build_graph(const Plan& plan) {
  return Builder(plan).build();
}

}  // namespace kumo::exec
