// generation_dir.cc: see generation_dir.h.
#include "core/internal/generation_dir.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/internal/binary_io.h"

namespace medsearch::internal {
namespace {

namespace fs = std::filesystem;

constexpr char kCurrentFile[] = "CURRENT";

}  // namespace

Result<std::string> current_generation(const fs::path& dir, std::string_view what) {
  auto current = read_file(dir / kCurrentFile);
  if (!current) {
    if (current.status().code() == StatusCode::kNotFound) {
      return Status::not_found("no " + std::string(what) + " at " + dir.string() + " (missing " + kCurrentFile + ")");
    }
    return current.status();
  }
  std::string gen = *current;
  while (!gen.empty() && (gen.back() == '\n' || gen.back() == '\r')) gen.pop_back();
  // Writers write "gen-" and digits. Anything else (a '/', or a NUL that the
  // OS would cut the path at) does not name a generation.
  if (gen.size() <= 4 || gen.rfind("gen-", 0) != 0 || gen.find_first_not_of("0123456789", 4) != std::string::npos) {
    return Status::corrupt(dir.string() + "/" + kCurrentFile + " does not name a generation");
  }
  std::error_code ec;
  if (!fs::is_directory(dir / gen, ec)) {
    return Status::corrupt(dir.string() + "/" + kCurrentFile + " names " + gen + ", which does not exist");
  }
  return gen;
}

Result<GenerationWriter> GenerationWriter::begin(const fs::path& dir, std::string_view what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error("cannot create " + dir.string() + ": " + ec.message());
  uint64_t generation = 1;
  const bool has_current = fs::exists(dir / kCurrentFile);
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("gen-", 0) == 0) {
      generation = std::max<uint64_t>(generation, std::strtoull(name.c_str() + 4, nullptr, 10) + 1);
    } else if (name != kCurrentFile && name != std::string(kCurrentFile) + ".tmp" && !has_current) {
      return Status::invalid_argument("refusing to save into " + dir.string() + ": it is not empty and not a " +
                                      std::string(what));
    }
  }
  // What killed writers left behind (gen-N.partial, generations renamed but
  // never made current, old ones not yet removed) goes first, so a writer
  // that keeps being killed cannot fill the disk with half-written
  // generations. Without a CURRENT, only .partial ones: a complete generation
  // may be all that is left.
  if (auto current = current_generation(dir, what); current || current.status().code() == StatusCode::kNotFound) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("gen-", 0) != 0) continue;
      if (current ? name != *current : name.ends_with(".partial")) fs::remove_all(entry.path(), ec);
    }
  }
  char name[32];
  std::snprintf(name, sizeof(name), "gen-%06llu", static_cast<unsigned long long>(generation));
  GenerationWriter writer(dir, name);
  fs::remove_all(writer.partial_, ec);
  fs::create_directory(writer.partial_, ec);
  if (ec) return Status::io_error("cannot create " + writer.partial_.string() + ": " + ec.message());
  return writer;
}

GenerationWriter::GenerationWriter(fs::path dir, std::string name)
    : dir_(std::move(dir)), name_(std::move(name)), partial_(dir_ / (name_ + ".partial")) {}

GenerationWriter::GenerationWriter(GenerationWriter&& other) noexcept
    : dir_(std::move(other.dir_)), name_(std::move(other.name_)), partial_(std::move(other.partial_)),
      done_(other.done_) {
  other.done_ = true;
}

GenerationWriter::~GenerationWriter() {
  if (done_) return;
  std::error_code ec;
  fs::remove_all(partial_, ec);
}

Status GenerationWriter::publish() {
  std::error_code ec;
  MEDSEARCH_RETURN_IF_ERROR(sync_directory(partial_));
  fs::rename(partial_, dir_ / name_, ec);
  if (ec) return Status::io_error("cannot rename " + partial_.string() + ": " + ec.message());
  done_ = true;
  MEDSEARCH_RETURN_IF_ERROR(sync_directory(dir_));
  // The switch: CURRENT is replaced by one atomic rename.
  MEDSEARCH_RETURN_IF_ERROR(write_file_atomic(dir_ / kCurrentFile, name_ + "\n"));
  MEDSEARCH_RETURN_IF_ERROR(sync_directory(dir_));
  // Older generations are garbage now; failing to remove them loses nothing.
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("gen-", 0) == 0 && name != name_) fs::remove_all(entry.path(), ec);
  }
  return Status::ok();
}

}  // namespace medsearch::internal
