// generation_dir.h: a directory whose contents are replaced whole or not at
// all (the index directory, core/index/persistence.cc).
//
// Layout: dir/gen-NNNNNN/ holds one complete version of the files and
// dir/CURRENT names the current one. A writer fills dir/gen-N.partial/,
// fsyncs it, renames it to gen-N, and replaces CURRENT by an atomic rename;
// a reader opens the generation CURRENT names. A writer killed at any point
// leaves the previous version current and loadable, and the next writer
// clears what it left.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <medsearch/status.h>

namespace medsearch::internal {

// The generation CURRENT names in `dir` ("gen-000003"). kNotFound without
// CURRENT ("no <what> at <dir>"), kCorrupt when CURRENT names no generation
// or one that does not exist.
Result<std::string> current_generation(const std::filesystem::path& dir, std::string_view what);

// One new generation being written.
class GenerationWriter {
 public:
  // Creates `dir` if needed, clears what killed writers left (partial
  // generations; without a CURRENT, only those), and creates the next
  // gen-N.partial. kInvalidArgument when `dir` holds other files and is not
  // such a directory ("not empty and not a <what>").
  static Result<GenerationWriter> begin(const std::filesystem::path& dir, std::string_view what);
  GenerationWriter(GenerationWriter&& other) noexcept;
  GenerationWriter& operator=(GenerationWriter&&) = delete;
  ~GenerationWriter();  // removes the partial generation unless published

  // Where the new generation's files go.
  const std::filesystem::path& partial() const { return partial_; }
  // Makes the partial generation current: fsync, rename to gen-N, fsync the
  // directory, replace CURRENT atomically, fsync again, remove older generations.
  Status publish();

 private:
  GenerationWriter(std::filesystem::path dir, std::string name);
  std::filesystem::path dir_;
  std::string name_;  // "gen-000004"
  std::filesystem::path partial_;
  bool done_ = false;  // published, or moved from
};

}  // namespace medsearch::internal
