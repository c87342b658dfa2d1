// vector_store.h: owns float32 rows of one dimension, addressed by slot.
//
// Three backings, one interface:
//   heap    64-byte-aligned anonymous memory (FlatIndex rows after add);
//   spill   a MAP_SHARED mapping of an unlinked temp file (the float32
//           rescoring copy of an int8 index: file-backed pages the kernel can
//           write back and evict, so they do not pin RAM like the graph does);
//   mapped  rows inside a read-only MappedFile (after load; zero copy).
// A mapped store becomes heap/spill (copying its rows) on the first write.
//
// Views: row(i) / row_span(i) borrow; they stay valid until the next
// resize() or set_row() on this store. FlatIndex hands data() to the GEMM of
// embed/kernels/dense.h; no Eigen here (only the per-level kernel objects use it).
// Thread-compatible: const methods may run concurrently; anything else needs
// exclusive access (the owning index's lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <medsearch/status.h>

namespace medsearch::internal {
class MappedFile;  // core/internal/mapped_file.h (not installed)
}  // namespace medsearch::internal

namespace medsearch::vector {

class VectorStore {
 public:
  enum class Backing : uint8_t { kHeap, kSpill };

  VectorStore() = default;
  VectorStore(size_t dim, Backing backing) : dim_(dim), backing_(backing) {}
  // Rows [0, rows) at `data` inside `file` (which the store keeps alive).
  static VectorStore mapped(size_t dim, Backing on_write,
                            std::shared_ptr<const medsearch::internal::MappedFile> file, const float* data,
                            size_t rows);
  VectorStore(VectorStore&&) noexcept;
  VectorStore& operator=(VectorStore&&) noexcept;
  ~VectorStore();

  size_t dim() const { return dim_; }
  size_t size() const { return rows_; }
  const float* data() const { return data_; }
  const float* row(size_t i) const { return data_ + i * dim_; }
  std::span<const float> row_span(size_t i) const { return {row(i), dim_}; }

  // Grows (or shrinks) to `rows`; new rows are zero. Capacity grows
  // geometrically. A mapped store is copied to its write backing first.
  [[nodiscard]] Status resize(size_t rows);
  // Room for `rows` without further reallocation (contents unchanged).
  [[nodiscard]] Status reserve(size_t rows);
  void set_row(size_t i, const float* values);
  float* mutable_row(size_t i) { return data_ + i * dim_; }

  // Anonymous memory held (heap backing, capacity included).
  size_t heap_bytes() const;
  // File-backed bytes (spill or mapped): resident only while touched.
  size_t mapped_bytes() const;
  bool is_mapped_file() const { return file_ != nullptr; }

 private:  void release();
  size_t dim_ = 0;
  Backing backing_ = Backing::kHeap;
  float* data_ = nullptr;
  size_t rows_ = 0;
  size_t capacity_ = 0;                                 // rows
  int spill_fd_ = -1;                                   // spill backing
  std::shared_ptr<const medsearch::internal::MappedFile> file_;  // mapped backing
};

}  // namespace medsearch::vector
