// collection_stats.cc: CollectionStats (include/medsearch/shard.h): of one
// index, merged over shards, and as a file.
#include <algorithm>

#include <medsearch/shard.h>

#include "core/index/index_impl.h"
#include "core/index/options_io.h"
#include "core/internal/binary_io.h"
#include "core/rank/features.h"

namespace medsearch {
namespace {

constexpr char kMagic[8] = {'m', 's', 's', 't', 'a', 't', 's', '\0'};
constexpr uint32_t kFormat = 1;

// Merges sorted (key, value) lists, summing the values of equal keys.
template <typename V, typename Add>
void merge_sorted(std::span<const std::vector<std::string>* const> keys, std::span<const std::vector<V>* const> values,
                  Add add, std::vector<std::string>* out_keys, std::vector<V>* out_values) {
  std::vector<std::pair<std::string_view, std::pair<size_t, size_t>>> all;  // (key, (part, index))
  size_t total = 0;
  for (const auto* k : keys) total += k->size();
  all.reserve(total);
  for (size_t part = 0; part < keys.size(); ++part) {
    for (size_t i = 0; i < keys[part]->size(); ++i) all.push_back({(*keys[part])[i], {part, i}});
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size();) {
    V value = (*values[all[i].second.first])[all[i].second.second];
    size_t j = i + 1;
    for (; j < all.size() && all[j].first == all[i].first; ++j) add(&value, (*values[all[j].second.first])[all[j].second.second]);
    out_keys->emplace_back(all[i].first);
    out_values->push_back(value);
    i = j;
  }
}

}  // namespace

CollectionStats CollectionStats::of(const Snapshot& snapshot) {
  const internal::Generation& g = *snapshot.parts().gen;
  const lexical::Bm25Index& bm25 = *g.bm25;
  CollectionStats s;
  s.documents = g.docs.size();
  s.passages = g.passages.size();
  for (uint32_t p = 0; p < bm25.num_passages(); ++p) {
    s.length_sum[0] += bm25.field_length(p, lexical::kBody);
    s.length_sum[1] += bm25.field_length(p, lexical::kHeading);
  }
  s.options = snapshot.options();
  s.dim = g.dim;
  s.model_id = g.model_id;
  s.terms.reserve(bm25.num_terms());
  s.doc_freq.reserve(bm25.num_terms());
  for (uint32_t t = 0; t < bm25.num_terms(); ++t) {
    s.terms.push_back(bm25.term(t));
    s.doc_freq.push_back({bm25.doc_freq(t, lexical::kBody), bm25.doc_freq(t, lexical::kHeading)});
  }
  const auto pages = internal::documents_per_heading(g.docs);
  std::vector<std::pair<std::string_view, uint32_t>> sorted(pages.begin(), pages.end());
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [heading, count] : sorted) {
    s.headings.emplace_back(heading);
    s.heading_documents.push_back(count);
  }
  rank::AudienceSums sums = rank::audience_sums(g.vectors, g.dim, g.passage_doc, g.doc_audience);
  s.audience_sum = std::move(sums.sum);
  s.audience_count = sums.count;
  return s;
}

Result<CollectionStats> CollectionStats::merge(std::span<const CollectionStats> parts) {
  if (parts.empty()) return Status::invalid_argument("no statistics to merge");
  const CollectionStats& first = parts[0];
  CollectionStats s;
  s.shards = 0;
  s.options = first.options;
  s.dim = first.dim;
  s.model_id = first.model_id;
  for (size_t i = 0; i < parts.size(); ++i) {
    const CollectionStats& p = parts[i];
    if (!(p.options == first.options)) {
      return Status::invalid_argument("shard statistics " + std::to_string(i) +
                                      " come from other build options than shard 0's");
    }
    if (p.dim != first.dim || p.model_id != first.model_id) {
      return Status::invalid_argument("shard statistics " + std::to_string(i) + " have vectors of '" + p.model_id +
                                      "' (" + std::to_string(p.dim) + " dimensions), shard 0 of '" + first.model_id +
                                      "' (" + std::to_string(first.dim) + ")");
    }
    s.shards += p.shards;
    s.documents += p.documents;
    s.passages += p.passages;
    s.length_sum[0] += p.length_sum[0];
    s.length_sum[1] += p.length_sum[1];
    for (int a = 0; a < 2; ++a) {
      s.audience_count[a] += p.audience_count[a];
      if (p.audience_sum[a].empty()) continue;
      if (s.audience_sum[a].empty()) s.audience_sum[a].assign(p.audience_sum[a].size(), 0.0);
      if (s.audience_sum[a].size() != p.audience_sum[a].size()) return Status::invalid_argument("audience sums differ in size");
      for (size_t j = 0; j < s.audience_sum[a].size(); ++j) s.audience_sum[a][j] += p.audience_sum[a][j];
    }
  }
  std::vector<const std::vector<std::string>*> keys;
  std::vector<const std::vector<std::array<uint32_t, 2>>*> dfs;
  std::vector<const std::vector<std::string>*> heading_keys;
  std::vector<const std::vector<uint32_t>*> heading_counts;
  for (const auto& p : parts) {
    keys.push_back(&p.terms);
    dfs.push_back(&p.doc_freq);
    heading_keys.push_back(&p.headings);
    heading_counts.push_back(&p.heading_documents);
  }
  merge_sorted<std::array<uint32_t, 2>>(
      keys, dfs, [](std::array<uint32_t, 2>* a, const std::array<uint32_t, 2>& b) { (*a)[0] += b[0], (*a)[1] += b[1]; },
      &s.terms, &s.doc_freq);
  merge_sorted<uint32_t>(heading_keys, heading_counts, [](uint32_t* a, uint32_t b) { *a += b; }, &s.headings,
                         &s.heading_documents);
  return s;
}

std::optional<size_t> CollectionStats::find_term(std::string_view term) const {
  const auto it = std::lower_bound(terms.begin(), terms.end(), term);
  if (it == terms.end() || *it != term) return std::nullopt;
  return static_cast<size_t>(it - terms.begin());
}

uint32_t CollectionStats::heading_count(std::string_view heading) const {
  const auto it = std::lower_bound(headings.begin(), headings.end(), heading);
  if (it == headings.end() || *it != heading) return 0;
  return heading_documents[it - headings.begin()];
}

std::vector<float> CollectionStats::audience_direction() const {
  rank::AudienceSums sums;
  sums.sum = audience_sum;
  sums.count = audience_count;
  return rank::audience_direction(sums, dim);
}

std::string CollectionStats::serialize() const {
  internal::BinaryWriter out;
  out.write(kMagic, sizeof(kMagic));
  out.put<uint32_t>(kFormat);
  out.put(version);
  out.put(shards);
  out.put(documents);
  out.put(passages);
  out.put(length_sum[0]);
  out.put(length_sum[1]);
  write_options(options, &out);
  out.put(options.bm25.k1);
  out.put(options.bm25.b);
  out.put(options.bm25.heading_weight);
  out.put(dim);
  out.put_string(model_id);
  out.put_strings(terms);
  out.put_vector(doc_freq);
  out.put_strings(headings);
  out.put_vector(heading_documents);
  for (int a = 0; a < 2; ++a) {
    out.put_vector(audience_sum[a]);
    out.put(audience_count[a]);
  }
  out.put<uint64_t>(out.checksum());
  return std::move(out.buffer());
}

Result<CollectionStats> CollectionStats::parse(std::string_view bytes, const std::string& name) {
  if (bytes.size() < sizeof(kMagic) + 12 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::corrupt(name + ": not a medsearch collection statistics file");
  }
  const size_t body = bytes.size() - sizeof(uint64_t);
  uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + body, sizeof(stored));
  if (internal::xxh3_64(bytes.substr(0, body)) != stored) return Status::corrupt(name + ": checksum mismatch");
  internal::BinaryReader in(bytes, name, sizeof(kMagic), body);
  uint32_t format = 0;
  MEDSEARCH_RETURN_IF_ERROR(in.get(&format));
  if (format != kFormat) {
    return Status(format < kFormat ? StatusCode::kOldFormat : StatusCode::kCorrupt,
                  name + ": statistics format " + std::to_string(format) + ", this build reads " +
                      std::to_string(kFormat));
  }
  CollectionStats s;
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.version));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.shards));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.documents));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.passages));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.length_sum[0]));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.length_sum[1]));
  MEDSEARCH_RETURN_IF_ERROR(read_options(&in, &s.options));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.options.bm25.k1));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.options.bm25.b));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.options.bm25.heading_weight));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&s.dim));
  MEDSEARCH_RETURN_IF_ERROR(in.get_string(&s.model_id));
  MEDSEARCH_RETURN_IF_ERROR(in.get_strings(&s.terms));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&s.doc_freq));
  MEDSEARCH_RETURN_IF_ERROR(in.get_strings(&s.headings));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&s.heading_documents));
  for (int a = 0; a < 2; ++a) {
    MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&s.audience_sum[a]));
    MEDSEARCH_RETURN_IF_ERROR(in.get(&s.audience_count[a]));
  }
  if (!in.at_end()) return in.corrupt("bytes after the statistics");
  if (s.doc_freq.size() != s.terms.size() || s.heading_documents.size() != s.headings.size() ||
      !std::is_sorted(s.terms.begin(), s.terms.end()) || !std::is_sorted(s.headings.begin(), s.headings.end()) ||
      s.shards == 0) {
    return Status::corrupt(name + ": inconsistent statistics");
  }
  for (int a = 0; a < 2; ++a) {
    if (!s.audience_sum[a].empty() && s.audience_sum[a].size() != s.dim) return Status::corrupt(name + ": inconsistent statistics");
  }
  return s;
}

Status CollectionStats::save(const std::filesystem::path& file) const {
  return internal::write_file_atomic(file, serialize());
}

Result<CollectionStats> CollectionStats::load(const std::filesystem::path& file) {
  auto bytes = internal::read_file(file);
  if (!bytes) return bytes.status();
  return parse(*bytes, file.string());
}

}  // namespace medsearch
