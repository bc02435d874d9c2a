// The one pool that talks to hosts: observing, locking and applying each run their per-host work
// through it, so threads and connections in flight stay bounded whatever the number of hosts.
#pragma once

#include <cstddef>
#include <functional>

namespace kumo {

// Hosts talked to at once when nothing else says (apply's --parallelism caps it).
inline constexpr int kHostParallelism = 32;

// Runs work(i) for every i in [0, count) on at most `limit` threads at once (at least one; none
// when count is 1: it runs on the caller's). Returns once every item has run. An exception from
// one item does not stop the others: the first one is rethrown after all have finished.
void bounded_for(std::size_t count, int limit, const std::function<void(std::size_t)>& work);

}  // namespace kumo
