#include "core/internal/binary_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <cstdio>
#include <fstream>

namespace medsearch::internal {

namespace {
Status errno_status(const std::string& what, const std::filesystem::path& path, int e = errno) {
  return Status::io_error(what + " " + path.string() + ": " + std::strerror(e));
}

// Writes all of [data, data + n) to fd, retrying on EINTR and short writes.
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}
}  // namespace

uint64_t xxh3_64(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

std::string checksum_hex(std::string_view data) {
  const uint64_t h = XXH64(data.data(), data.size(), 0);
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

// ---------------------------------------------------------------------------
// BinaryWriter

struct BinaryWriter::File {
  std::filesystem::path path, tmp;
  int fd = -1;
  bool committed = false;
  Status status;  // the first error
  XXH3_state_t* hash = nullptr;

  ~File() {
    if (fd >= 0) ::close(fd);
    if (!committed) ::unlink(tmp.c_str());
    if (hash != nullptr) XXH3_freeState(hash);
  }
  void append(const char* data, size_t n) {
    XXH3_64bits_update(hash, data, n);
    if (!status.is_ok()) return;
    if (!write_all(fd, data, n)) status = errno_status("cannot write", tmp);
  }
};

BinaryWriter::BinaryWriter() = default;
BinaryWriter::~BinaryWriter() = default;
BinaryWriter::BinaryWriter(BinaryWriter&& o) noexcept
    : buffer_(std::move(o.buffer_)), flushed_(std::exchange(o.flushed_, 0)), file_(std::move(o.file_)) {
  o.buffer_.clear();
}
BinaryWriter& BinaryWriter::operator=(BinaryWriter&& o) noexcept {
  if (this != &o) {
    buffer_ = std::move(o.buffer_);
    o.buffer_.clear();
    flushed_ = std::exchange(o.flushed_, 0);
    file_ = std::move(o.file_);
  }
  return *this;
}

Result<BinaryWriter> BinaryWriter::create_file(const std::filesystem::path& path) {
  auto file = std::make_unique<File>();
  file->path = path;
  file->tmp = path.string() + ".tmp";
  file->fd = ::open(file->tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (file->fd < 0) {
    Status st = errno_status("cannot create", file->tmp);
    file->committed = true;  // nothing of ours to remove
    return st;
  }
  file->hash = XXH3_createState();
  if (file->hash == nullptr) return Status::internal("out of memory creating " + file->tmp.string());
  XXH3_64bits_reset(file->hash);
  BinaryWriter w;
  w.file_ = std::move(file);
  return w;
}

void BinaryWriter::flush() {
  if (buffer_.empty()) return;
  file_->append(buffer_.data(), buffer_.size());
  flushed_ += buffer_.size();
  buffer_.clear();
}

void BinaryWriter::spill(const void* data, size_t n) {
  flush();
  if (n >= kFlushBytes) {  // straight through, not copied
    file_->append(static_cast<const char*>(data), n);
    flushed_ += n;
  } else {
    buffer_.append(static_cast<const char*>(data), n);
  }
}

void BinaryWriter::align(size_t a) {
  static const char zeros[64] = {};
  for (size_t pad = (a - offset() % a) % a; pad > 0;) {  // any alignment, 64 zeros at a time
    const size_t n = std::min(pad, sizeof(zeros));
    write(zeros, n);
    pad -= n;
  }
}

uint64_t BinaryWriter::checksum() const {
  if (file_ == nullptr) return xxh3_64(buffer_);
  XXH3_state_t* s = XXH3_createState();
  XXH3_copyState(s, file_->hash);
  XXH3_64bits_update(s, buffer_.data(), buffer_.size());
  const uint64_t digest = XXH3_64bits_digest(s);
  XXH3_freeState(s);
  return digest;
}

const std::filesystem::path& BinaryWriter::path() const {
  static const std::filesystem::path kNone;
  return file_ != nullptr ? file_->path : kNone;
}

Status BinaryWriter::commit() {
  if (file_ == nullptr) return Status::internal("commit() of a writer without a file");
  if (file_->fd < 0) return Status::internal("commit() called twice on " + file_->path.string());
  flush();
  File& f = *file_;
  if (f.status.is_ok() && ::fsync(f.fd) != 0) f.status = errno_status("cannot flush", f.tmp);
  const int fd = std::exchange(f.fd, -1);
  if (::close(fd) != 0 && f.status.is_ok()) f.status = errno_status("cannot close", f.tmp);
  if (!f.status.is_ok()) return f.status;  // ~File removes the temp file
  if (::rename(f.tmp.c_str(), f.path.c_str()) != 0) return errno_status("cannot rename onto", f.path);
  f.committed = true;
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Whole files

Result<std::string> read_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found("no such file: " + path.string());
  // A directory opens as a stream whose size reads as huge.
  if (std::filesystem::is_directory(path, ec)) return Status::io_error(path.string() + " is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot open " + path.string());
  std::string data;
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size < 0) return Status::io_error("cannot read " + path.string());
  data.resize(static_cast<size_t>(size));
  in.seekg(0);
  in.read(data.data(), size);
  if (!in) return Status::io_error("short read of " + path.string());
  return data;
}

Status write_file_atomic(const std::filesystem::path& path, std::string_view data) {
  auto w = BinaryWriter::create_file(path);
  if (!w) return w.status();
  w->write(data.data(), data.size());
  return w->commit();
}

Status sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open directory", dir);
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0) return errno_status("cannot sync directory", dir, e);
  return Status::ok();
}

}  // namespace medsearch::internal
