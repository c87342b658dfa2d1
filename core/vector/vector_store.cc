#include "core/vector/vector_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/internal/mapped_file.h"

namespace medsearch::vector {

namespace {
// Creates an unlinked file in $TMPDIR (or /tmp) for the spill backing.
int open_spill_file() {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) dir = "/tmp";
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string tmpl = (dir / "medsearch-vectors-XXXXXX").string();
  fd = ::mkstemp(tmpl.data());
  if (fd >= 0) ::unlink(tmpl.c_str());
  return fd;
}
}  // namespace

VectorStore VectorStore::mapped(size_t dim, Backing on_write, std::shared_ptr<const internal::MappedFile> file,
                                const float* data, size_t rows) {
  VectorStore s(dim, on_write);
  s.file_ = std::move(file);
  s.data_ = const_cast<float*>(data);  // never written through while file_ is set
  s.rows_ = rows;
  s.capacity_ = rows;
  return s;
}

VectorStore::VectorStore(VectorStore&& o) noexcept { *this = std::move(o); }

VectorStore& VectorStore::operator=(VectorStore&& o) noexcept {
  if (this != &o) {
    release();
    dim_ = o.dim_;
    backing_ = o.backing_;
    data_ = std::exchange(o.data_, nullptr);
    rows_ = std::exchange(o.rows_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    spill_fd_ = std::exchange(o.spill_fd_, -1);
    file_ = std::move(o.file_);
  }
  return *this;
}

VectorStore::~VectorStore() { release(); }

void VectorStore::release() {
  if (file_) {
    file_.reset();
  } else if (spill_fd_ >= 0) {
    if (data_) ::munmap(data_, capacity_ * dim_ * sizeof(float));
    ::close(spill_fd_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  spill_fd_ = -1;
  rows_ = capacity_ = 0;
}

Status VectorStore::reserve(size_t rows) {
  if (rows <= capacity_ && !file_) return Status::ok();
  const size_t cap = std::max({rows, capacity_ + capacity_ / 2, size_t{64}});
  const size_t bytes = cap * dim_ * sizeof(float);
  if (backing_ == Backing::kSpill) {
    if (spill_fd_ < 0) {
      const int fd = open_spill_file();
      if (fd < 0) return Status::io_error(std::string("cannot create a spill file: ") + std::strerror(errno));
      spill_fd_ = fd;
    }
    if (::ftruncate(spill_fd_, static_cast<off_t>(bytes)) != 0) {
      return Status::io_error(std::string("cannot grow the spill file: ") + std::strerror(errno));
    }
    void* p;
    if (data_ && !file_) {
      p = ::mremap(data_, capacity_ * dim_ * sizeof(float), bytes, MREMAP_MAYMOVE);
    } else {
      p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, spill_fd_, 0);
    }
    if (p == MAP_FAILED) return Status::io_error(std::string("cannot map the spill file: ") + std::strerror(errno));
    if (file_) {
      std::memcpy(p, data_, rows_ * dim_ * sizeof(float));
      file_.reset();
    }
    data_ = static_cast<float*>(p);
  } else {
    auto* p = static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!p) return Status::internal("out of memory for " + std::to_string(cap) + " vectors");
    if (rows_) std::memcpy(p, data_, rows_ * dim_ * sizeof(float));
    if (file_) {
      file_.reset();
    } else {
      std::free(data_);
    }
    data_ = p;
  }
  capacity_ = cap;
  return Status::ok();
}

Status VectorStore::resize(size_t rows) {
  MEDSEARCH_RETURN_IF_ERROR(reserve(rows));
  if (rows > rows_) std::memset(data_ + rows_ * dim_, 0, (rows - rows_) * dim_ * sizeof(float));
  rows_ = rows;
  return Status::ok();
}

void VectorStore::set_row(size_t i, const float* values) { std::memcpy(data_ + i * dim_, values, dim_ * sizeof(float)); }

size_t VectorStore::heap_bytes() const {
  return (!file_ && spill_fd_ < 0) ? capacity_ * dim_ * sizeof(float) : 0;
}
size_t VectorStore::mapped_bytes() const {
  return (file_ || spill_fd_ >= 0) ? capacity_ * dim_ * sizeof(float) : 0;
}

}  // namespace medsearch::vector
