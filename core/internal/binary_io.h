// binary_io.h: the library's one binary I/O stack.
//
//   BinaryWriter   little-endian values, strings, arrays and alignment padding,
//                  into memory (buffer()) or streamed into a new file that
//                  replaces its path atomically on commit() (create_file);
//   BinaryReader   the same values back over a byte span (a std::string from
//                  read_file(), or a MappedFile's bytes() used in place), every
//                  out-of-bounds read a kCorrupt Status naming the file instead
//                  of undefined behaviour;
//   xxh3_64        the checksum of the vector index files and the encoder's
//                  pinned weights; checksum_hex: XXH64 in hex, the checksum the
//                  index directory's manifest stores (two algorithms because
//                  both are part of on-disk formats);
//   read_file, write_file_atomic, sync_directory: whole files, crash-safe.
//
// Values are written in host byte order, which is little-endian on every
// platform we build for (x86-64).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <medsearch/status.h>

namespace medsearch::internal {

// XXH3-64 (seed 0) of `data`.
uint64_t xxh3_64(std::string_view data);

// XXH64 (seed 0) of `data`, as 16 lowercase hex digits.
std::string checksum_hex(std::string_view data);

// Serialises values into memory or, from create_file(), into a file.
//
// In memory, buffer() holds everything written. A file writer streams: it
// keeps up to kFlushBytes in buffer(), passes larger writes straight through,
// and fills "<path>.tmp" until commit() fsyncs it and renames it over <path>,
// so a crash leaves the old file or the new one. The first I/O error is kept
// (later writes are dropped) and returned by commit(); a file writer
// destroyed without a successful commit() removes its temp file.
// Thread-compatible; move-only.
class BinaryWriter {
 public:
  static constexpr size_t kFlushBytes = size_t{1} << 20;

  BinaryWriter();
  ~BinaryWriter();
  BinaryWriter(BinaryWriter&&) noexcept;
  BinaryWriter& operator=(BinaryWriter&&) noexcept;

  // A writer streaming into "<path>.tmp" (created or truncated now;
  // kIoError naming it if that fails).
  static Result<BinaryWriter> create_file(const std::filesystem::path& path);

  template <typename T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    write(&value, sizeof(T));
  }
  // u32 length, then the bytes.
  void put_string(std::string_view s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    write(s.data(), s.size());
  }
  // u64 count, then the elements.
  template <typename T>
  void put_vector(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    write(v.data(), v.size() * sizeof(T));
  }
  // u32 count, then each string as put_string.
  void put_strings(const std::vector<std::string>& v) {
    put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) put_string(s);
  }
  void write(const void* data, size_t n) {
    if (file_ != nullptr && buffer_.size() + n > kFlushBytes) return spill(data, n);
    buffer_.append(static_cast<const char*>(data), n);
  }
  // Zero bytes up to the next multiple of `a` (> 0) of offset().
  void align(size_t a);

  // Bytes written so far (flushed or not).
  uint64_t offset() const { return flushed_ + buffer_.size(); }
  // XXH3-64 of every byte written so far.
  uint64_t checksum() const;
  // The bytes not yet flushed: in memory, all of them.
  const std::string& buffer() const { return buffer_; }
  std::string& buffer() { return buffer_; }
  // The final path of a file writer; empty in memory.
  const std::filesystem::path& path() const;

  // File writer: flushes, fsyncs and closes the temp file, then renames it
  // over path(). Returns the first error of the writer's life. The caller
  // fsyncs the directory (sync_directory) to make the rename durable. Only
  // once; an in-memory writer returns kInternal.
  Status commit();

 private:
  struct File;
  void spill(const void* data, size_t n);
  void flush();
  std::string buffer_;
  uint64_t flushed_ = 0;
  std::unique_ptr<File> file_;  // null in memory
};

// Reads what a BinaryWriter wrote, from bytes [begin, end) of `data`.
// Offsets (offset(), error messages, view()'s alignment) count from
// data.data(); a view's address is aligned too when data.data() is (a
// mapping starts on a page). `data` must outlive the reader and every view
// taken from it. `name` (the file) starts every error message.
class BinaryReader {
 public:
  BinaryReader(std::string_view data, std::string name) : BinaryReader(data, std::move(name), 0, data.size()) {}
  // Requires begin <= end <= data.size().
  BinaryReader(std::string_view data, std::string name, size_t begin, size_t end)
      : data_(data.data()), pos_(begin), end_(end), name_(std::move(name)) {}

  template <typename T>
  Status get(T* value) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (end_ - pos_ < sizeof(T)) return truncated();
    std::memcpy(value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }
  Status get_string(std::string* s) {
    uint32_t n = 0;
    MEDSEARCH_RETURN_IF_ERROR(get(&n));
    if (end_ - pos_ < n) return truncated();
    s->assign(data_ + pos_, n);
    pos_ += n;
    return Status::ok();
  }
  template <typename T>
  Status get_vector(std::vector<T>* v) {
    static_assert(std::is_trivially_copyable_v<T>);
    uint64_t n = 0;
    MEDSEARCH_RETURN_IF_ERROR(get(&n));
    if (n > (end_ - pos_) / sizeof(T)) return truncated();
    v->resize(n);
    if (n) std::memcpy(v->data(), data_ + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return Status::ok();
  }
  Status get_strings(std::vector<std::string>* v) {
    uint32_t n = 0;
    MEDSEARCH_RETURN_IF_ERROR(get(&n));
    if (n > (end_ - pos_) / 4) return truncated();  // each string takes >= 4 bytes
    v->resize(n);
    for (auto& s : *v) MEDSEARCH_RETURN_IF_ERROR(get_string(&s));
    return Status::ok();
  }
  // `n` bytes in place, after skipping to the next multiple of `align` (> 0)
  // of the offset. On error nothing is consumed and *out is unchanged.
  Status view(size_t n, size_t align, const char** out) {
    if (end_ - pos_ < (align - pos_ % align) % align) return truncated();
    const size_t p = pos_ + (align - pos_ % align) % align;
    if (end_ - p < n) return truncated();
    *out = data_ + p;
    pos_ = p + n;
    return Status::ok();
  }

  size_t offset() const { return pos_; }
  size_t remaining() const { return end_ - pos_; }
  bool at_end() const { return pos_ == end_; }
  // kCorrupt: "<name>: <what> at byte <offset>".
  Status corrupt(const std::string& what) const {
    return Status::corrupt(name_ + ": " + what + " at byte " + std::to_string(pos_));
  }

 private:
  Status truncated() const { return corrupt("truncated data"); }
  const char* data_;
  size_t pos_, end_;
  std::string name_;
};

// Reads a whole file. kNotFound if missing, kIoError for a directory or on
// read failure.
Result<std::string> read_file(const std::filesystem::path& path);

// Writes `data` to `path` via a temporary file in the same directory, fsync,
// then rename, so a crash leaves either the old file or the new one.
Status write_file_atomic(const std::filesystem::path& path, std::string_view data);

// fsyncs a directory so renames inside it are durable.
Status sync_directory(const std::filesystem::path& dir);

}  // namespace medsearch::internal
