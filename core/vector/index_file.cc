#include "core/vector/index_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>

#include "core/internal/binary_io.h"

namespace medsearch::vector::internal {

namespace {
Status errno_status(const std::string& what, const std::filesystem::path& path) {
  return Status::io_error(what + " " + path.string() + ": " + std::strerror(errno));
}
}  // namespace

Result<std::shared_ptr<const MappedFile>> MappedFile::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("no such file: " + path.string());
    return errno_status("cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = errno_status("cannot stat", path);
    ::close(fd);
    return s;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return Status::corrupt(path.string() + ": empty file");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) return errno_status("cannot map", path);
  return std::shared_ptr<const MappedFile>(new MappedFile(static_cast<const char*>(p), size));
}

MappedFile::~MappedFile() { ::munmap(const_cast<char*>(data_), size_); }

void MappedFile::release_pages(size_t offset, size_t n) const {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t begin = (offset + page - 1) / page * page;
  const size_t end = std::min(size_, offset + n) / page * page;
  if (end > begin) ::madvise(const_cast<char*>(data_) + begin, end - begin, MADV_DONTNEED);
}

Result<VerifiedFile> open_verified(const std::filesystem::path& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  const MappedFile& f = **mapped;
  const std::string name = path.string();
  if (f.size() < kHeaderBytes + kTrailerBytes) return Status::corrupt(name + ": file too short");
  if (std::memcmp(f.data(), kFileMagic, 8) != 0) return Status::corrupt(name + ": not a medsearch vector index");
  uint32_t version = 0, kind = 0;
  std::memcpy(&version, f.data() + 8, 4);
  std::memcpy(&kind, f.data() + 12, 4);
  if (version != kFormatVersion) {
    return Status::corrupt(name + ": format version " + std::to_string(version) + ", this build reads " +
                           std::to_string(kFormatVersion));
  }
  const char* trailer = f.data() + f.size() - kTrailerBytes;
  if (std::memcmp(trailer + 8, kEndMagic, 8) != 0) return Status::corrupt(name + ": truncated (no end marker)");
  uint64_t stored = 0;
  std::memcpy(&stored, trailer, 8);
  const uint64_t actual = XXH3_64bits(f.data(), f.size() - kTrailerBytes);
  if (stored != actual) return Status::corrupt(name + ": checksum mismatch");
  if (kind > static_cast<uint32_t>(IndexKind::kHnsw)) return Status::corrupt(name + ": unknown index kind");
  // The checksum pass touched every page; let them go until they are used.
  f.release_pages(0, f.size());
  return VerifiedFile{std::move(mapped).value(), static_cast<IndexKind>(kind)};
}

struct FileWriter::HashState {
  XXH3_state_t* s;
};

Result<std::unique_ptr<FileWriter>> FileWriter::create(const std::filesystem::path& path, IndexKind kind) {
  std::unique_ptr<FileWriter> w(new FileWriter());
  w->path_ = path;
  w->tmp_ = path.string() + ".tmp";
  w->fd_ = ::open(w->tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return errno_status("cannot create", w->tmp_);
  auto* hs = new HashState{XXH3_createState()};
  XXH3_64bits_reset(hs->s);
  w->hash_ = std::unique_ptr<HashState, void (*)(HashState*)>(hs, [](HashState* h) {
    XXH3_freeState(h->s);
    delete h;
  });
  w->buffer_.reserve(1 << 20);
  MEDSEARCH_RETURN_IF_ERROR(w->write(kFileMagic, 8));
  MEDSEARCH_RETURN_IF_ERROR(w->put(kFormatVersion));
  MEDSEARCH_RETURN_IF_ERROR(w->put(static_cast<uint32_t>(kind)));
  return w;
}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!done_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

Status FileWriter::flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status("cannot write", tmp_);
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
  return Status::ok();
}

Status FileWriter::write(const void* data, size_t n) {
  XXH3_64bits_update(hash_->s, data, n);
  offset_ += n;
  const char* p = static_cast<const char*>(data);
  if (buffer_.size() + n > (1 << 20)) MEDSEARCH_RETURN_IF_ERROR(flush());
  if (n >= (1 << 20)) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno_status("cannot write", tmp_);
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::ok();
  }
  buffer_.append(p, n);
  return Status::ok();
}

Status FileWriter::align(size_t a) {
  static const char zeros[64] = {};
  for (size_t pad = (a - offset_ % a) % a; pad > 0;) {  // any alignment, 64 zeros at a time
    const size_t n = std::min(pad, sizeof(zeros));
    MEDSEARCH_RETURN_IF_ERROR(write(zeros, n));
    pad -= n;
  }
  return Status::ok();
}

Status FileWriter::finish() {
  const uint64_t digest = XXH3_64bits_digest(hash_->s);
  buffer_.append(reinterpret_cast<const char*>(&digest), 8);
  buffer_.append(kEndMagic, 8);
  MEDSEARCH_RETURN_IF_ERROR(flush());
  if (::fsync(fd_) != 0) return errno_status("cannot flush", tmp_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return errno_status("cannot close", tmp_);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return errno_status("cannot rename onto", path_);
  done_ = true;
  std::filesystem::path dir = path_.parent_path();
  if (dir.empty()) dir = ".";
  return medsearch::internal::sync_directory(dir);
}

}  // namespace medsearch::vector::internal
