#include "core/internal/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace medsearch::internal {

namespace {
Status errno_status(const std::string& what, const std::filesystem::path& path, int e) {
  return Status::io_error(what + " " + path.string() + ": " + std::strerror(e));
}
}  // namespace

Result<std::shared_ptr<const MappedFile>> MappedFile::open(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("no such file: " + path.string());
    return errno_status("cannot open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return errno_status("cannot stat", path, e);
  }
  // A directory opens read-only without complaint; mmap would then fail
  // with the unhelpful ENODEV.
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::io_error(path.string() +
                            (S_ISDIR(st.st_mode) ? " is a directory, not a file" : " is not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  const char* data = nullptr;
  if (size > 0) {  // mmap of length 0 is EINVAL
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return errno_status("cannot map", path, e);
    }
    data = static_cast<const char*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return std::shared_ptr<const MappedFile>(new MappedFile(data, size, path));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
}

Result<std::string_view> MappedFile::view(size_t offset, size_t n) const {
  if (offset > size_ || size_ - offset < n) {
    return Status::corrupt(path_.string() + ": bytes [" + std::to_string(offset) + ", +" + std::to_string(n) +
                           ") are past the end of the file (" + std::to_string(size_) + " bytes)");
  }
  return std::string_view(data_ + offset, n);
}

void MappedFile::release_pages(size_t offset, size_t n) const {
  if (data_ == nullptr || offset >= size_) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t begin = (offset + page - 1) / page * page;
  const size_t end = (offset + std::min(n, size_ - offset)) / page * page;
  if (end > begin) ::madvise(const_cast<char*>(data_) + begin, end - begin, MADV_DONTNEED);
}

}  // namespace medsearch::internal
