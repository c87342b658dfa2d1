// index_file.h: the on-disk container of vector indexes.
//
// Layout (little-endian):
//   [0, 8)    magic "MSVECIDX"
//   [8, 12)   format version (kFormatVersion)
//   [12, 16)  index kind (IndexKind)
//   ...       the index's payload; large arrays start at 64-byte-aligned
//             offsets so they can be used in place from a memory mapping
//   last 16   XXH3-64 of every byte before it, then "MSVECEND"
//
// Writes are crash-safe: the file is streamed to "<path>.tmp", fsynced, renamed
// over <path>, and the directory is fsynced, so a crash leaves the old file or
// the new one. Reads map the file (PROT_READ, MAP_SHARED) and verify magic,
// version and checksum before anything is parsed; every later read goes
// through a bounds-checked Cursor, so a damaged file is a kCorrupt Status.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>

#include "core/common/status.h"
#include "core/vector/types.h"

namespace medsearch::vector::internal {

inline constexpr char kFileMagic[8] = {'M', 'S', 'V', 'E', 'C', 'I', 'D', 'X'};
inline constexpr char kEndMagic[8] = {'M', 'S', 'V', 'E', 'C', 'E', 'N', 'D'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 16;
inline constexpr size_t kTrailerBytes = 16;

// A read-only memory mapping of a whole file. Shared by everything that views
// into it (VectorStore rows); unmapped when the last owner goes.
class MappedFile {
 public:
  static Result<std::shared_ptr<const MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  // Drops resident pages of [offset, offset + n) from this process (they stay
  // in the page cache and fault back in when touched).
  void release_pages(size_t offset, size_t n) const;

 private:
  MappedFile(const char* data, size_t size) : data_(data), size_(size) {}
  const char* data_;
  size_t size_;
};

// Maps `path`, checks magic, version and checksum; returns the mapping and
// the index kind. The payload starts at kHeaderBytes and ends at
// size() - kTrailerBytes.
struct VerifiedFile {
  std::shared_ptr<const MappedFile> file;
  IndexKind kind;
};
Result<VerifiedFile> open_verified(const std::filesystem::path& path);

class Cursor {
 public:
  Cursor(const MappedFile& f, std::string name)
      : base_(f.data()), pos_(kHeaderBytes), end_(f.size() - kTrailerBytes), name_(std::move(name)) {}
  template <typename T>
  Status get(T* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (end_ - pos_ < sizeof(T)) return truncated();
    std::memcpy(v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }
  // A pointer to `n` bytes in place, after aligning the position to `align`.
  Status view(size_t n, size_t align, const char** out) {
    const size_t p = (pos_ + align - 1) / align * align;
    if (p > end_ || end_ - p < n) return truncated();
    *out = base_ + p;
    pos_ = p + n;
    return Status::ok();
  }
  size_t offset() const { return pos_; }
  bool at_end() const { return pos_ == end_; }
  Status corrupt(const std::string& what) const {
    return Status::corrupt(name_ + ": " + what + " at byte " + std::to_string(pos_));
  }

 private:
  Status truncated() const { return corrupt("truncated data"); }
  const char* base_;
  size_t pos_, end_;
  std::string name_;
};

// Streams a new index file; see the layout above. Not thread-safe.
class FileWriter {
 public:
  // Opens "<path>.tmp" and writes the header.
  static Result<std::unique_ptr<FileWriter>> create(const std::filesystem::path& path, IndexKind kind);
  ~FileWriter();  // removes the temp file unless finish() succeeded
  Status write(const void* data, size_t n);
  template <typename T>
  Status put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(&v, sizeof(T));
  }
  Status align(size_t a);  // zero padding up to a multiple of `a`
  // Trailer, flush, fsync, rename, directory fsync.
  Status finish();

 private:
  FileWriter() = default;
  Status flush();
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
  bool done_ = false;
  uint64_t offset_ = 0;
  std::string buffer_;
  struct HashState;
  std::unique_ptr<HashState, void (*)(HashState*)> hash_{nullptr, nullptr};
};

}  // namespace medsearch::vector::internal
