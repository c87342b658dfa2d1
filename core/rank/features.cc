#include "core/rank/features.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <strings.h>

#include "core/rank/fusion.h"
#include "core/vector/kernels/distance.h"

namespace medsearch::rank {

std::span<const std::string_view> feature_names() {
  static constexpr std::string_view kNames[kNumFeatures] = {
      "bm25",           "bm25_rel",      "body_idf_norm", "heading_idf_norm", "dense",       "dense_gap",
      "bm25_rank",      "dense_rank",    "cover_body",    "cover_heading",    "cover_any",   "log_length",
      "first_passage",  "log_ordinal",   "doc_support",   "doc_dense_gap",    "rrf",         "query_terms",
      "section_support", "section_dense_gap", "audience_dense", "bm25_dense_led", "bm25_dense_led_rel",
      "cover_dense_led", "heading_commonness", "phrase_match", "dense_z"};
  return kNames;
}

AudienceSums audience_sums(std::span<const float> vectors, uint32_t dim, std::span<const uint32_t> passage_doc,
                           std::span<const uint8_t> doc_audience) {
  AudienceSums out;
  if (dim == 0 || vectors.size() != passage_doc.size() * size_t{dim}) return out;
  out.sum = {std::vector<double>(dim), std::vector<double>(dim)};
  // In double and in passage order, so a generation and a rebuild over the
  // same passages agree bit for bit.
  for (size_t p = 0; p < passage_doc.size(); ++p) {
    const uint8_t a = doc_audience[passage_doc[p]];
    if (a != 1 && a != 2) continue;
    const float* v = vectors.data() + p * dim;
    auto& s = out.sum[a - 1];
    for (uint32_t j = 0; j < dim; ++j) s[j] += v[j];
    ++out.count[a - 1];
  }
  return out;
}

std::vector<float> audience_direction(const AudienceSums& sums, uint32_t dim) {
  if (sums.count[0] == 0 || sums.count[1] == 0 || sums.sum[0].size() != dim || sums.sum[1].size() != dim) return {};
  std::vector<double> diff(dim);
  double norm = 0;
  for (uint32_t j = 0; j < dim; ++j) {
    diff[j] = sums.sum[1][j] / static_cast<double>(sums.count[1]) - sums.sum[0][j] / static_cast<double>(sums.count[0]);
    norm += diff[j] * diff[j];
  }
  if (!(norm > 0)) return {};
  std::vector<float> out(dim);
  const double inv = 1.0 / std::sqrt(norm);
  for (uint32_t j = 0; j < dim; ++j) out[j] = static_cast<float>(diff[j] * inv);
  return out;
}

std::vector<float> audience_direction(std::span<const float> vectors, uint32_t dim,
                                      std::span<const uint32_t> passage_doc, std::span<const uint8_t> doc_audience) {
  return audience_direction(audience_sums(vectors, dim, passage_doc, doc_audience), dim);
}

std::vector<QueryPhrase> query_phrases(std::string_view query, std::span<const text::Token> tokens,
                                       const lexical::Bm25Index& index) {
  return query_phrases(query, tokens, [&](std::string_view term) { return index.find_term(term); });
}

std::vector<QueryPhrase> query_phrases(std::string_view query, std::span<const text::Token> tokens,
                                       const std::function<std::optional<uint32_t>(std::string_view)>& find_term) {
  std::vector<QueryPhrase> out;
  for (size_t i = 1; i < tokens.size() && out.size() < kMaxPhrases; ++i) {
    const text::Token& a = tokens[i - 1];
    const text::Token& b = tokens[i];
    if (b.position != a.position + 1 || b.end <= a.begin || b.end > query.size()) continue;
    const auto first = find_term(a.term);
    const auto second = find_term(b.term);
    if (!first || !second) continue;
    std::string text(query.substr(a.begin, b.end - a.begin));
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::none_of(out.begin(), out.end(), [&](const QueryPhrase& p) { return p.text == text; })) {
      out.push_back({std::move(text), *first, *second});
    }
  }
  return out;
}

namespace {

// Whether `needle` (ASCII lower case, not empty) occurs in `text`, ASCII case
// ignored: memchr finds each place its first letter starts, in either case.
bool contains_folded(std::string_view text, std::string_view needle) {
  const size_t n = needle.size();
  if (n == 0 || n > text.size()) return false;
  const char lower = needle[0];
  const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(lower)));
  const char* const end = text.data() + text.size() - n + 1;  // last start + 1
  auto next = [&](const char* from, char c) {
    const void* hit = from < end ? std::memchr(from, c, static_cast<size_t>(end - from)) : nullptr;
    return hit ? static_cast<const char*>(hit) : end;
  };
  // strncasecmp's first comparison, inline: most places where the first
  // letter matches fail at the second, without the call.
  const int second = n > 1 ? std::tolower(static_cast<unsigned char>(needle[1])) : 0;
  const char* at_lower = next(text.data(), lower);
  const char* at_upper = upper == lower ? end : next(text.data(), upper);
  while (at_lower != end || at_upper != end) {
    const char* p = std::min(at_lower, at_upper);
    if ((n == 1 || std::tolower(static_cast<unsigned char>(p[1])) == second) &&
        strncasecmp(p + 1, needle.data() + 1, n - 1) == 0) {
      return true;
    }
    if (p == at_lower) at_lower = next(p + 1, lower);
    if (p == at_upper) at_upper = next(p + 1, upper);
  }
  return false;
}

// For each candidate of the pool: how many candidates share its key (its
// document, its section) and their best cosine. Sorting (key, candidate)
// pairs groups them without a node allocation per key.
void group_stats(std::span<const Candidate> pool, std::span<const uint32_t> key,
                 std::vector<std::pair<uint32_t, uint32_t>>* scratch, std::vector<std::pair<uint32_t, float>>* out) {
  scratch->resize(pool.size());
  for (uint32_t i = 0; i < pool.size(); ++i) (*scratch)[i] = {key[i], i};
  std::sort(scratch->begin(), scratch->end());
  out->resize(pool.size());
  for (size_t a = 0; a < scratch->size();) {
    size_t b = a;
    float best = -1.0f;
    while (b < scratch->size() && (*scratch)[b].first == (*scratch)[a].first) best = std::max(best, pool[(*scratch)[b++].second].dense);
    for (size_t j = a; j < b; ++j) (*out)[(*scratch)[j].second] = {static_cast<uint32_t>(b - a), best};
    a = b;
  }
}

}  // namespace

PassageRows describe_passages(const CorpusView& corpus, std::span<const lexical::QueryTerm> terms,
                              std::span<const float> query_vector, std::span<const uint32_t> passages,
                              std::span<const QueryPhrase> phrases, const lexical::ScoringStats* stats) {
  using lexical::kBody;
  using lexical::kHeading;
  const lexical::Bm25Index& index = *corpus.bm25;
  const size_t n = passages.size(), nt = terms.size();
  PassageRows rows;
  rows.num_terms = nt;
  rows.facts.resize(n);
  rows.body.assign(n * nt, 0.0f);
  rows.heading.assign(n * nt, 0.0f);
  if (n == 0) return rows;

  // Per-term field scores, looked up in passage order (one pass through each
  // term's postings), for the terms the index holds.
  std::vector<uint32_t> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return passages[a] < passages[b]; });
  std::vector<uint32_t> sorted(n);
  for (size_t i = 0; i < n; ++i) sorted[i] = passages[order[i]];
  std::vector<lexical::QueryTerm> held;
  std::vector<std::array<uint32_t, lexical::kNumFields>> held_df;
  std::vector<size_t> column;  // held term -> its column
  for (size_t t = 0; t < nt; ++t) {
    if (terms[t].term_id == kNoTerm) continue;
    held.push_back(terms[t]);
    if (stats) held_df.push_back(stats->doc_freq[t]);
    column.push_back(t);
  }
  lexical::ScoringStats held_stats;
  if (stats) {
    held_stats = *stats;
    held_stats.doc_freq = held_df;
  }
  const size_t nh = held.size();
  std::vector<float> body_sorted(n * nh), heading_sorted(n * nh);
  index.term_scores_sorted(held, sorted, kBody, body_sorted, stats ? &held_stats : nullptr);
  index.term_scores_sorted(held, sorted, kHeading, heading_sorted, stats ? &held_stats : nullptr);
  for (size_t r = 0; r < n; ++r) {
    const size_t row = order[r];
    for (size_t h = 0; h < nh; ++h) {
      rows.body[row * nt + column[h]] = body_sorted[r * nh + h];
      rows.heading[row * nt + column[h]] = heading_sorted[r * nh + h];
    }
  }

  const bool have_vectors = !query_vector.empty() && !corpus.vectors.empty();
  const auto& kernels = vector::kernels::best_kernels();
  if (have_vectors) {
    // The rows are random reads (1.5 KB at 384 dimensions, mostly not in
    // cache): request the rows of the next kAhead passages while this one
    // is scored, rather than wait for each row's lines in turn.
    constexpr size_t kAhead = 4;
    auto row = [&](size_t i) { return corpus.vectors.data() + size_t{passages[i]} * corpus.dim; };
    auto request = [&](size_t i) {
      const char* first = reinterpret_cast<const char*>(row(i));
      const char* last = first + size_t{corpus.dim} * sizeof(float) - 1;
      for (const char* line = first; line < last; line += 64) __builtin_prefetch(line);
      __builtin_prefetch(last);
    };
    for (size_t i = 0; i < std::min(kAhead, n); ++i) request(i);
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) request(i + kAhead);
      rows.facts[i].dense = kernels.dot_f32(query_vector.data(), row(i), corpus.dim);
    }
  }

  // Each phrase's two words as positions in `terms` (phrases whose words are
  // not both query terms held here are never found).
  struct PhraseTerms {
    size_t phrase, first, second;
  };
  std::vector<PhraseTerms> phrase_terms;
  for (size_t k = 0; k < phrases.size(); ++k) {
    const QueryPhrase& ph = phrases[k];
    auto at = [&](uint32_t id) {
      for (size_t t = 0; t < nt; ++t) {
        if (terms[t].term_id == id && id != kNoTerm) return t;
      }
      return nt;
    };
    const size_t ta = at(ph.first_term), tb = at(ph.second_term);
    if (ta < nt && tb < nt) phrase_terms.push_back({k, ta, tb});
  }

  // Each passage's own facts, read in one tight pass: random reads into
  // corpus-sized arrays, mostly not in cache, whose misses overlap here.
  for (size_t i = 0; i < n; ++i) {
    const uint32_t p = passages[i];
    const uint32_t doc = corpus.passage_doc[p];
    PassageFacts& f = rows.facts[i];
    f.doc = doc;
    f.section = corpus.passage_section.empty() ? 0 : corpus.passage_section[p];
    f.length = index.field_length(p, kBody);
    f.ordinal = p - corpus.doc_first_passage[doc];
    f.audience = corpus.doc_audience.empty() ? uint8_t{0} : corpus.doc_audience[doc];
    f.heading_commonness = corpus.passage_heading_commonness.empty() ? 0.0f : corpus.passage_heading_commonness[p];
  }
  if (!phrase_terms.empty() && corpus.body_text) {
    for (size_t i = 0; i < n; ++i) {
      const float* body_parts = rows.body.data() + i * nt;
      const float* heading_parts = rows.heading.data() + i * nt;
      // Only passages holding both words are searched.
      uint32_t found = 0;
      std::string_view body;
      const std::vector<std::string>* headings = nullptr;  // fetched for the first phrase searched
      for (const auto& [k, ta, tb] : phrase_terms) {
        const bool both = (body_parts[ta] > 0 || heading_parts[ta] > 0) && (body_parts[tb] > 0 || heading_parts[tb] > 0);
        if (!both) continue;
        if (!headings) {
          body = corpus.body_text(passages[i]);
          headings = &corpus.heading_path(passages[i]);
        }
        const std::string& needle = phrases[k].text;
        bool hit = contains_folded(body, needle);
        for (const std::string& h : *headings) hit = hit || contains_folded(h, needle);
        found += hit;
      }
      rows.facts[i].phrases = found;
    }
  }
  return rows;
}

std::vector<Candidate> assemble_pool(const QuerySide& query, std::span<const uint32_t> passages,
                                     std::span<const std::array<uint32_t, 2>> ranks, uint32_t bm25_size,
                                     uint32_t dense_size, const PassageRows& rows) {
  const size_t n = passages.size(), nt = rows.num_terms;
  std::vector<Candidate> pool(n);
  if (n == 0) return pool;
  const float heading_weight = query.heading_weight;
  // The query's idf mass per field: the most a passage could cover.
  std::vector<float> term_idf(nt);
  float idf_body = 0, idf_heading = 0;
  for (size_t t = 0; t < nt; ++t) {
    term_idf[t] = query.weight[t] * query.idf_body[t];
    idf_body += term_idf[t];
    idf_heading += query.weight[t] * query.idf_heading[t];
  }
  // Dense-led term weights: each term's share of the dense list's best
  // kDenseLedDepth passages (all of which are in the pool) that contain it.
  // Without a dense list every term weighs 1.
  std::vector<float> support(nt, 1.0f);
  {
    std::vector<uint32_t> containing(nt, 0);
    uint32_t top = 0;
    for (size_t i = 0; i < n; ++i) {
      if (ranks[i][1] == kNotListed || ranks[i][1] >= kDenseLedDepth) continue;
      ++top;
      const float* b = rows.body.data() + i * nt;
      const float* h = rows.heading.data() + i * nt;
      for (size_t t = 0; t < nt; ++t) containing[t] += (b[t] > 0 || h[t] > 0);
    }
    if (top) {
      for (size_t t = 0; t < nt; ++t) support[t] = static_cast<float>(containing[t]) / static_cast<float>(top);
    }
  }
  float idf_led = 0;
  for (size_t t = 0; t < nt; ++t) idf_led += support[t] * term_idf[t];
  const bool have_vectors = query.has_vectors;

  const float log_query_terms = std::log1p(static_cast<float>(nt));
  float best_bm25 = 0, best_dense = -1.0f, best_led = 0;
  for (size_t i = 0; i < n; ++i) {
    Candidate& c = pool[i];
    const PassageFacts& facts = rows.facts[i];
    c.passage = passages[i];
    c.dense = facts.dense;
    FeatureVector& f = c.features;
    const float* body_parts = rows.body.data() + i * nt;
    const float* heading_parts = rows.heading.data() + i * nt;
    float covered_body = 0, covered_heading = 0, covered_any = 0, covered_led = 0, led = 0;
    for (size_t t = 0; t < nt; ++t) {
      const float w = query.weight[t];
      c.body += w * body_parts[t];
      c.heading += w * heading_parts[t];
      led += support[t] * w * (body_parts[t] + heading_weight * heading_parts[t]);
      const float idf = term_idf[t];
      if (body_parts[t] > 0) covered_body += idf;
      if (heading_parts[t] > 0) covered_heading += idf;
      if (body_parts[t] > 0 || heading_parts[t] > 0) {
        covered_any += idf;
        covered_led += support[t] * idf;
      }
    }
    f[kBm25] = c.body + heading_weight * c.heading;
    f[kBodyIdfNorm] = idf_body > 0 ? c.body / idf_body : 0.0f;
    f[kHeadingIdfNorm] = idf_heading > 0 ? c.heading / idf_heading : 0.0f;
    f[kDense] = c.dense;
    const uint32_t bm25_rank = ranks[i][0] == kNotListed ? bm25_size : ranks[i][0];
    const uint32_t dense_rank = ranks[i][1] == kNotListed ? dense_size : ranks[i][1];
    f[kBm25Rank] = std::log2(2.0f + static_cast<float>(bm25_rank));
    f[kDenseRank] = std::log2(2.0f + static_cast<float>(dense_rank));
    // kRrfK x rrf_fuse's score (1 / (k + 1-based rank)) per list, written so
    // the float values stay those the reranker was trained on.
    f[kRrf] = (ranks[i][0] == kNotListed ? 0.0f : kRrfK / (kRrfK + 1.0f + ranks[i][0])) +
              (ranks[i][1] == kNotListed ? 0.0f : kRrfK / (kRrfK + 1.0f + ranks[i][1]));
    f[kCoverBody] = idf_body > 0 ? covered_body / idf_body : 0.0f;
    f[kCoverHeading] = idf_body > 0 ? covered_heading / idf_body : 0.0f;
    f[kCoverAny] = idf_body > 0 ? covered_any / idf_body : 0.0f;
    f[kLogLength] = std::log1p(static_cast<float>(facts.length));
    f[kFirstPassage] = facts.ordinal == 0 ? 1.0f : 0.0f;
    f[kLogOrdinal] = std::log1p(static_cast<float>(facts.ordinal));
    f[kQueryTerms] = log_query_terms;
    f[kBm25DenseLed] = led;
    f[kHeadingCommonness] = facts.heading_commonness;
    if (query.phrases) f[kPhraseMatch] = static_cast<float>(facts.phrases) / static_cast<float>(query.phrases);
    f[kCoverDenseLed] = idf_led > 0 ? covered_led / idf_led : 0.0f;
    f[kAudienceDense] = facts.audience == 2 ? query.audience : facts.audience == 1 ? -query.audience : 0.0f;
    best_bm25 = std::max(best_bm25, f[kBm25]);
    best_dense = std::max(best_dense, c.dense);
    best_led = std::max(best_led, led);
  }
  // Per candidate: (passages of its document in the pool, their best cosine), and the same per section.
  std::vector<uint32_t> doc_key(n), section_key(n);
  for (size_t i = 0; i < n; ++i) {
    doc_key[i] = rows.facts[i].doc;
    section_key[i] = rows.facts[i].section;
  }
  std::vector<std::pair<uint32_t, uint32_t>> scratch;
  std::vector<std::pair<uint32_t, float>> per_doc, per_section;
  group_stats(pool, doc_key, &scratch, &per_doc);
  if (query.has_sections) group_stats(pool, section_key, &scratch, &per_section);
  // The pool's cosine mean and (population) standard deviation, for kDenseZ.
  double dense_sum = 0, dense_sq = 0;
  for (const Candidate& c : pool) dense_sum += c.dense;
  const double dense_mean = dense_sum / static_cast<double>(n);
  for (const Candidate& c : pool) dense_sq += (c.dense - dense_mean) * (c.dense - dense_mean);
  const double dense_sd = std::sqrt(dense_sq / static_cast<double>(n));
  const double dense_inv_sd = dense_sd > 1e-9 ? 1.0 / dense_sd : 1.0;
  for (size_t i = 0; i < n; ++i) {
    Candidate& c = pool[i];
    FeatureVector& f = c.features;
    f[kDenseZ] = have_vectors ? static_cast<float>((c.dense - dense_mean) * dense_inv_sd) : 0.0f;
    const auto& d = per_doc[i];
    f[kBm25Rel] = best_bm25 > 0 ? f[kBm25] / best_bm25 : 0.0f;
    f[kDenseGap] = have_vectors ? c.dense - best_dense : 0.0f;
    f[kDocSupport] = std::log1p(static_cast<float>(d.first));
    f[kDocDenseGap] = have_vectors ? d.second - best_dense : 0.0f;
    f[kBm25DenseLedRel] = best_led > 0 ? f[kBm25DenseLed] / best_led : 0.0f;
    if (query.has_sections) {
      const auto& sec = per_section[i];
      f[kSectionSupport] = std::log1p(static_cast<float>(sec.first));
      f[kSectionDenseGap] = have_vectors ? sec.second - best_dense : 0.0f;
    }
  }
  return pool;
}

std::vector<Candidate> build_pool(const CorpusView& corpus, std::span<const lexical::QueryTerm> terms,
                                  std::span<const float> query_vector, std::span<const lexical::ScoredPassage> bm25,
                                  std::span<const lexical::ScoredPassage> dense, std::span<const QueryPhrase> phrases) {
  using lexical::kBody;
  using lexical::kHeading;
  const lexical::Bm25Index& index = *corpus.bm25;

  // Pool in first-seen order (BM25 list, then dense), with each passage's ranks.
  // Repeats are found in an open-addressing table of (passage, slot), at most
  // half full: one allocation, not one per passage.
  const size_t listed = bm25.size() + dense.size();
  if (listed == 0) return {};
  std::vector<uint32_t> passages;
  passages.reserve(listed);
  std::vector<std::array<uint32_t, 2>> ranks;
  ranks.reserve(listed);
  const int table_bits = std::bit_width(2 * listed - 1);  // 2^bits >= 2 x listed
  std::vector<std::pair<uint32_t, uint32_t>> slot(size_t{1} << table_bits, {kNotListed, 0});
  auto add = [&](std::span<const lexical::ScoredPassage> list, int side) {
    for (uint32_t r = 0; r < list.size(); ++r) {
      const uint32_t p = list[r].passage;
      // Fibonacci hashing: the top bits of p x 2^64 / golden ratio.
      size_t h = (uint64_t{p} * 0x9E3779B97F4A7C15ull) >> (64 - table_bits);
      while (slot[h].first != kNotListed && slot[h].first != p) h = (h + 1) & (slot.size() - 1);
      if (slot[h].first == kNotListed) {
        slot[h] = {p, static_cast<uint32_t>(passages.size())};
        passages.push_back(p);
        ranks.push_back({kNotListed, kNotListed});
      }
      ranks[slot[h].second][side] = r;
    }
  };
  add(bm25, 0);
  add(dense, 1);

  const PassageRows rows = describe_passages(corpus, terms, query_vector, passages, phrases);
  QuerySide q;
  q.weight.resize(terms.size());
  q.idf_body.resize(terms.size());
  q.idf_heading.resize(terms.size());
  for (size_t t = 0; t < terms.size(); ++t) {
    q.weight[t] = terms[t].weight;
    q.idf_body[t] = index.idf(terms[t].term_id, kBody);
    q.idf_heading[t] = index.idf(terms[t].term_id, kHeading);
  }
  q.phrases = phrases.size();
  q.has_vectors = !query_vector.empty() && !corpus.vectors.empty();
  q.audience = q.has_vectors && corpus.audience_direction.size() == corpus.dim
                   ? vector::kernels::best_kernels().dot_f32(query_vector.data(), corpus.audience_direction.data(),
                                                            corpus.dim)
                   : 0.0f;
  q.has_sections = !corpus.passage_section.empty();
  q.heading_weight = index.params().heading_weight;
  return assemble_pool(q, passages, ranks, static_cast<uint32_t>(bm25.size()), static_cast<uint32_t>(dense.size()),
                       rows);
}

}  // namespace medsearch::rank
