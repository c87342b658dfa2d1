// mapped_file.h: a read-only memory mapping of a whole file.
//
// The one place the library maps files: the vector index files
// (core/vector/index_file.h, whose rows are then used in place) and the
// encoder's weights (core/embed/model_files.cc). Readers parse the bytes
// through a BinaryReader (binary_io.h) over bytes(), or take bounds-checked
// views with view().
//
// Ownership: open() returns a shared_ptr; everything that points into the
// mapping (VectorStore rows, for one) holds a copy, and the file is unmapped
// when the last owner goes. Thread-safe: the mapping never changes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <medsearch/status.h>

namespace medsearch::internal {

class MappedFile {
 public:
  // Maps `path` (PROT_READ, MAP_SHARED). Errors name the path: kNotFound for
  // a missing file, kIoError for a directory, another non-regular file, or a
  // failed open/stat/mmap. An empty file is fine: size() 0, data() nullptr.
  static Result<std::shared_ptr<const MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

  // The bytes [offset, offset + n), or kCorrupt naming the path when they are
  // not all inside the file (overflow-safe).
  Result<std::string_view> view(size_t offset, size_t n) const;

  // Drops resident pages of [offset, offset + n) from this process (they stay
  // in the page cache and fault back in when touched). Partial pages at
  // either end are kept.
  void release_pages(size_t offset, size_t n) const;

 private:
  MappedFile(const char* data, size_t size, std::filesystem::path path)
      : data_(data), size_(size), path_(std::move(path)) {}
  const char* data_;
  size_t size_;
  std::filesystem::path path_;
};

}  // namespace medsearch::internal
