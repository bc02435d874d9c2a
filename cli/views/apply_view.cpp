#include "cli/views/apply_view.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace kumo::views {

using Clock = std::chrono::steady_clock;

std::string aligned(const std::vector<std::vector<std::string>>& table) {
  std::vector<std::size_t> width(table[0].size(), 0);
  for (const auto& row : table)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : table) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      std::string cell = row[c];
      if (c + 1 < row.size()) cell.resize(width[c] + 2, ' ');
      line += cell;
    }
    out += line + "\n";
  }
  return out;
}

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 || v >= 100 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

namespace {

std::string paint(bool colour, const char* code, const std::string& text) {
  return colour ? std::string("\033[") + code + "m" + text + "\033[0m" : text;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
  return buf;
}

std::string where(const ExecEvent& e) {
  return e.address + (e.host.empty() ? "" : " on " + e.host);
}

}  // namespace

static std::string duration_text(double s) {
  const long long total = static_cast<long long>(s);
  if (total < 60) return std::to_string(total) + "s";
  return std::to_string(total / 60) + "m" + (total % 60 < 10 ? "0" : "") +
         std::to_string(total % 60) + "s";
}

ProgressView::ProgressView(std::ostream& out, bool live, bool colour, bool quiet, int width,
                           std::chrono::seconds report_every)
    : out_(out),
      live_(live),
      colour_(colour),
      quiet_(quiet),
      width_(width < 20 ? 20 : width),
      report_every_(report_every) {}

void ProgressView::clear_locked() {
  if (drawn_) {
    out_ << "\r\033[K";
    drawn_ = false;
  }
}

void ProgressView::draw_locked() {
  if (!live_ || quiet_) return;
  clear_locked();
  if (running_.empty()) return;
  std::string line = "[" + std::to_string(done_) + " done] ";
  int shown = 0;
  for (const auto& [id, r] : running_) {
    if (shown++ == 3) {
      line += " +" + std::to_string(running_.size() - 3) + " more";
      break;
    }
    if (shown > 1) line += "; ";
    line += r.last.what + " " + r.last.address + (r.last.host.empty() ? "" : "@" + r.last.host);
    if (r.last.total > 0) {
      line += " " + std::to_string(r.last.done * 100 / r.last.total) + "%";
    }
    line += " " + seconds_text(std::chrono::duration<double>(Clock::now() - r.since).count());
  }
  // One line, never wrapped: a wrapped line could not be cleared by \r.
  const std::size_t room = static_cast<std::size_t>(width_ - 1);
  if (line.size() > room) line = line.substr(0, room - 3) + "...";
  out_ << line << std::flush;
  drawn_ = true;
  last_draw_ = Clock::now();
}

void ProgressView::on_event(const ExecEvent& e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (e.kind == ExecEvent::Kind::Started) {
    running_[e.step] = {e, Clock::now(), Clock::now(), ""};
    if (!live_ && !quiet_)
      out_ << "  start    " << where(e) << ": " << e.what << "\n" << std::flush;
    draw_locked();
    return;
  }
  if (e.kind == ExecEvent::Kind::Progress) {
    auto it = running_.find(e.step);
    if (it != running_.end()) {
      if (e.message.empty()) {
        it->second.last.done = e.done;
        it->second.last.total = e.total;
      } else {
        it->second.status = e.message;
      }
    }
    if (Clock::now() - last_draw_ > std::chrono::milliseconds(200)) draw_locked();
    return;
  }
  running_.erase(e.step);
  ++done_;
  clear_locked();
  if (!quiet_ || e.status == StepStatus::Failed) {
    std::string tag;
    switch (e.status) {
      case StepStatus::Ok:
        tag = paint(colour_, "32", "  ok     ");
        break;
      case StepStatus::Failed:
        tag = paint(colour_, "1;31", "  FAILED ");
        break;
      default:
        tag = paint(colour_, "33", "  skipped");
        break;
    }
    out_ << tag << " " << where(e) << ": " << e.what;
    if (e.status != StepStatus::Skipped) out_ << " (" << seconds_text(e.seconds) << ")";
    if (!e.message.empty()) {
      if (e.status == StepStatus::Ok) {
        out_ << ": " << e.message;
      } else {
        out_ << "\n           " << e.message;
      }
    }
    out_ << "\n";
  }
  draw_locked();
  out_ << std::flush;
}

void ProgressView::tick() {
  std::lock_guard<std::mutex> lock(mu_);
  if (live_) {
    draw_locked();
    return;
  }
  if (quiet_) return;
  // No terminal: a line now and then for each step still running, so a CI log never looks hung.
  const auto now = Clock::now();
  for (auto& [id, r] : running_) {
    if (now - r.reported < report_every_) continue;
    r.reported = now;
    std::string detail = r.status;
    if (r.last.total > 0)
      detail =
          std::to_string(r.last.done * 100 / r.last.total) + "% of " + human_bytes(r.last.total);
    out_ << "  waiting  " << where(r.last) << ": " << r.last.what << " ("
         << (detail.empty() ? "" : detail + ", ")
         << duration_text(std::chrono::duration<double>(now - r.since).count()) << ")\n";
  }
  out_ << std::flush;
}

void ProgressView::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  clear_locked();
  out_ << std::flush;
}

std::string render_summary(const ExecResult& result, const std::string& verb, bool colour) {
  std::ostringstream out;
  const int ok = result.count(StepStatus::Ok), failed = result.count(StepStatus::Failed),
            skipped = result.count(StepStatus::Skipped);
  out << "\n";
  if (failed == 0 && skipped == 0) {
    out << paint(colour, "1;32", verb + " complete") << ": " << ok << " steps done in "
        << seconds_text(result.seconds) << ".\n";
  } else {
    out << paint(colour, "1;31", verb + " failed") << ": " << ok << " steps done, " << failed
        << " failed, " << skipped << " skipped, in " << seconds_text(result.seconds) << ".\n";
    out << "\nFailed:\n";
    for (const auto& s : result.steps) {
      if (s.status != StepStatus::Failed) continue;
      out << "  " << s.address << (s.host.empty() ? "" : " on " + s.host) << ": " << s.what
          << "\n    " << s.message << "\n";
    }
    if (skipped > 0) {
      out << "\nSkipped (they depend on what failed):\n";
      for (const auto& s : result.steps) {
        if (s.status != StepStatus::Skipped) continue;
        out << "  " << s.address << (s.host.empty() ? "" : " on " + s.host) << ": " << s.what
            << "\n";
      }
    }
    out << "\nWhat succeeded stays; run the same command again to finish the rest.\n";
  }
  if (!result.vms.empty()) {
    out << "\nReady:\n";
    std::size_t w = 0;
    for (const auto& v : result.vms) w = std::max(w, v.address.size() + v.host.size() + 4);
    for (const auto& v : result.vms) {
      std::string name = v.address + " on " + v.host;
      name.resize(w, ' ');
      out << "  " << name << " " << (v.addresses.empty() ? "-" : "");
      for (std::size_t i = 0; i < v.addresses.size(); ++i) out << (i ? ", " : "") << v.addresses[i];
      out << "  (ready after " << seconds_text(v.seconds) << ")\n";
    }
  }
  return out.str();
}

}  // namespace kumo::views
