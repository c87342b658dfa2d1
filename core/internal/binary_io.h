// binary_io.h: little-endian binary serialisation with a running checksum.
//
// Writers append to an in-memory buffer; the caller writes the buffer to disk
// with write_file_atomic() (temp file, fsync, rename). Readers work over a
// whole file in memory and turn every out-of-bounds read into a kCorrupt
// Status instead of undefined behaviour.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/common/status.h"

namespace medsearch::internal {

class BinaryWriter {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const char*>(&value);
    buffer_.append(p, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    buffer_.append(s.data(), s.size());
  }
  template <typename T>
  void put_vector(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    buffer_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void put_strings(const std::vector<std::string>& v) {
    put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) put_string(s);
  }
  const std::string& buffer() const { return buffer_; }
  std::string& buffer() { return buffer_; }

 private:
  std::string buffer_;
};

class BinaryReader {
 public:
  // `data` must outlive the reader. `name` appears in error messages.
  BinaryReader(std::string_view data, std::string name) : data_(data), name_(std::move(name)) {}

  template <typename T>
  Status get(T* value) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (data_.size() - pos_ < sizeof(T)) return truncated();
    std::memcpy(value, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }
  Status get_string(std::string* s) {
    uint32_t n = 0;
    MEDSEARCH_RETURN_IF_ERROR(get(&n));
    if (data_.size() - pos_ < n) return truncated();
    s->assign(data_.data() + pos_, n);
    pos_ += n;
    return Status::ok();
  }
  template <typename T>
  Status get_vector(std::vector<T>* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    uint64_t n = 0;
    MEDSEARCH_RETURN_IF_ERROR(get(&n));
    if (n > (data_.size() - pos_) / sizeof(T)) return truncated();
    v->resize(n);
    if (n) std::memcpy(v->data(), data_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return Status::ok();
  }
  Status get_strings(std::vector<std::string>* v) {
    uint32_t n = 0;
    MEDSEARCH_RETURN_IF_ERROR(get(&n));
    if (n > (data_.size() - pos_) / 4) return truncated();  // each string takes >= 4 bytes
    v->resize(n);
    for (auto& s : *v) MEDSEARCH_RETURN_IF_ERROR(get_string(&s));
    return Status::ok();
  }
  bool at_end() const { return pos_ == data_.size(); }
  Status corrupt(const std::string& what) const {
    return Status::corrupt(name_ + ": " + what + " at byte " + std::to_string(pos_));
  }

 private:
  Status truncated() const { return corrupt("truncated data"); }
  std::string_view data_;
  size_t pos_ = 0;
  std::string name_;
};

// 64-bit xxHash of `data`, as 16 lowercase hex digits.
std::string checksum_hex(std::string_view data);

// Reads a whole file. kNotFound if missing, kIoError on read failure.
Result<std::string> read_file(const std::filesystem::path& path);

// Writes `data` to `path` via a temporary file in the same directory, fsync,
// then rename, so a crash leaves either the old file or the new one.
Status write_file_atomic(const std::filesystem::path& path, std::string_view data);

// fsyncs a directory so renames inside it are durable.
Status sync_directory(const std::filesystem::path& dir);

}  // namespace medsearch::internal
