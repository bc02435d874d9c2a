// Base image steps: fetched once into the local cache, uploaded once to each host that lacks it
// (with a marker volume once complete), checked on the hosts that had it when planned.
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "planner/exec/steps.h"
#include "providers/ownership.h"

namespace kumo::exec {

std::string fetch_image(ExecContext& ctx, const Task& t) {
  const ImagePlan& im = *t.image;
  FetchedImage f = ctx.fetcher()(
      im, [&](std::uint64_t done, std::uint64_t total) { ctx.sink().progress(t, done, total); });
  if (!im.checksum.empty() && f.checksum != im.checksum) {
    throw HostError("image " + im.name + ": the cache holds " + f.checksum +
                    ", but the plan was made for " + im.checksum + "; plan again");
  }
  ctx.set_fetched(im.name, f);
  return std::to_string(f.size >> 20) + " MiB, " + f.checksum.substr(0, 19) + "…";
}

namespace {

// Read back: the host's copy starts with the same bytes as the verified file.
void check_upload(ExecContext& ctx, HostSession& s, const std::string& host,
                  const std::string& volume, const FetchedImage& f) {
  std::string local(4096, '\0');
  std::ifstream again(f.path, std::ios::binary);
  again.read(local.data(), static_cast<std::streamsize>(local.size()));
  local.resize(static_cast<std::size_t>(again.gcount()));
  if (s.read_volume(volume, 0, local.size()) != local) {
    throw HostError(ctx.label(host) + ": " + volume +
                    " does not hold the image after the upload (read back differs)");
  }
}

std::string rate(std::uint64_t bytes, double secs) {
  char text[96];
  std::snprintf(text, sizeof text, "%llu MiB in %.2f s (%.0f MiB/s)",
                static_cast<unsigned long long>(bytes >> 20), secs,
                static_cast<double>(bytes) / 1048576.0 / std::max(secs, 0.001));
  return text;
}

}  // namespace

std::string upload_image(ExecContext& ctx, const Task& t) {
  const ImagePlan& im = *t.image;
  const std::string& host = t.host;
  const FetchedImage f = ctx.fetched(im.name);
  const auto colon = f.checksum.find(':');
  const std::string volume = im.volume.empty() ? image_volume_name(f.checksum.substr(0, colon),
                                                                   f.checksum.substr(colon + 1))
                                               : im.volume;
  HostSession& s = ctx.session(host);
  const std::string marker = image_marker_name(volume);
  // An upload cut short has no marker: start over. (Another run may have finished it since.)
  if (s.volume(volume) && s.volume(marker)) {
    ctx.record_base(im.name, host, s, volume, *s.volume(volume));
    return "already there";
  }
  ctx.delete_volume(host, volume);
  std::ifstream in(f.path, std::ios::binary);
  if (!in) throw HostError("image " + im.name + ": cannot read " + f.path + " from the cache");
  std::uint64_t sent = 0;
  const auto t0 = Clock::now();
  s.upload_volume(
      volume, f.size,
      [&](char* buf, std::size_t max) -> std::size_t {
        in.read(buf, static_cast<std::streamsize>(max));
        return static_cast<std::size_t>(in.gcount());
      },
      [&](const Transfer& tr) {
        sent = tr.done;
        ctx.sink().progress(t, tr.done, tr.total);
      });
  if (sent != f.size && sent != 0) {
    throw HostError(ctx.label(host) + ": upload of " + volume + " stopped at " +
                    std::to_string(sent) + " of " + std::to_string(f.size) + " bytes");
  }
  check_upload(ctx, s, host, volume, f);
  {
    std::lock_guard<std::mutex> lock(ctx.pool_mutex(host));
    s.create_volume(VolumeSpec{marker, 0, "raw", "", ""});
  }
  const auto v = s.volume(volume);
  if (!v) throw HostError(ctx.label(host) + ": " + volume + " is missing after the upload");
  ctx.record_base(im.name, host, s, volume, *v);
  return rate(f.size, since(t0));
}

std::string check_image(ExecContext& ctx, const Task& t) {
  const ImagePlan& im = *t.image;
  HostSession& s = ctx.session(t.host);
  const auto v = s.volume(im.volume);
  if (!v || !s.volume(image_marker_name(im.volume))) {
    throw HostError(ctx.label(t.host) + ": base image " + im.volume +
                    " is gone since the plan was made; plan again");
  }
  ctx.record_base(im.name, t.host, s, im.volume, *v);
  return "already there";
}

}  // namespace kumo::exec
