#include <roaring/roaring.h>

#include <medsearch/vector_types.h>

namespace medsearch::vector {

IdFilter::IdFilter() : bitmap_(roaring_bitmap_create()) {}
IdFilter::IdFilter(std::span<const DocId> ids) : IdFilter() { add_many(ids); }
IdFilter::IdFilter(IdFilter&& o) noexcept : bitmap_(o.bitmap_) { o.bitmap_ = roaring_bitmap_create(); }
IdFilter& IdFilter::operator=(IdFilter&& o) noexcept {
  std::swap(bitmap_, o.bitmap_);
  return *this;
}
IdFilter::~IdFilter() { roaring_bitmap_free(bitmap_); }

void IdFilter::add(DocId id) { roaring_bitmap_add(bitmap_, id); }
void IdFilter::add_many(std::span<const DocId> ids) {
  roaring_bitmap_add_many(bitmap_, ids.size(), ids.data());
  roaring_bitmap_run_optimize(bitmap_);
}
bool IdFilter::contains(DocId id) const { return roaring_bitmap_contains(bitmap_, id); }
uint64_t IdFilter::cardinality() const { return roaring_bitmap_get_cardinality(bitmap_); }
std::vector<DocId> IdFilter::to_vector() const {
  std::vector<DocId> out(cardinality());
  roaring_bitmap_to_uint32_array(bitmap_, out.data());
  return out;
}

}  // namespace medsearch::vector
