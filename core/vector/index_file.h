// index_file.h: the on-disk container of vector indexes (not installed).
//
// Layout (little-endian):
//   [0, 8)    magic "MSVECIDX"
//   [8, 12)   format version (kFormatVersion)
//   [12, 16)  index kind (IndexKind)
//   ...       the index's payload; large arrays start at 64-byte-aligned
//             offsets so they can be used in place from a memory mapping
//   last 16   XXH3-64 of every byte before it, then "MSVECEND"
//
// The container only frames the payload; the bytes go through the library's
// one binary I/O stack (core/internal/binary_io.h, mapped_file.h). Writes are
// crash-safe: a streaming BinaryWriter fills "<path>.tmp", which is fsynced,
// renamed over <path>, and the directory is fsynced, so a crash leaves the old
// file or the new one. Reads map the file and verify magic, version and
// checksum before anything is parsed; the payload is then read through a
// bounds-checked BinaryReader, so a damaged file is a kCorrupt Status.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <medsearch/status.h>
#include <medsearch/vector_types.h>

#include "core/internal/binary_io.h"
#include "core/internal/mapped_file.h"

namespace medsearch::vector::internal {

using medsearch::internal::BinaryReader;
using medsearch::internal::BinaryWriter;
using medsearch::internal::MappedFile;

inline constexpr char kFileMagic[8] = {'M', 'S', 'V', 'E', 'C', 'I', 'D', 'X'};
inline constexpr char kEndMagic[8] = {'M', 'S', 'V', 'E', 'C', 'E', 'N', 'D'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 16;
inline constexpr size_t kTrailerBytes = 16;

// Maps `path`, checks magic, version and checksum; returns the mapping and
// the index kind. The payload starts at kHeaderBytes and ends at
// size() - kTrailerBytes.
struct VerifiedFile {
  std::shared_ptr<const MappedFile> file;
  IndexKind kind;
};
Result<VerifiedFile> open_verified(const std::filesystem::path& path);

// A reader of the payload of a file from open_verified(), starting at
// kHeaderBytes; it never reads the trailer. `f` must outlive it.
BinaryReader payload_reader(const MappedFile& f, std::string name);

// Starts a new index file at `path` (a streaming BinaryWriter on
// "<path>.tmp") with its header written. Not thread-safe.
Result<BinaryWriter> create_index_file(const std::filesystem::path& path, IndexKind kind);

// Appends the trailer, commits the file (fsync, rename) and fsyncs its
// directory. Returns the first error of the writer's life.
Status finish_index_file(BinaryWriter& w);

}  // namespace medsearch::vector::internal
