// shard.cc: scatter-gather search over shards (include/medsearch/shard.h):
// the plan a coordinator sends, the answer of each shard, and the merge.
//
// A plan holds the query as every shard needs it: its analysed terms (those
// the collection knows, in term order) with their collection-wide document
// frequencies, its phrases, its vector and the options. A shard answers with
// its own BM25 and dense top lists (scored with the collection's statistics)
// and, in the hybrid and rerank modes, the facts of every passage on them
// (rank::PassageRows). The merge takes the collection's top lists from the
// shards' (each shard's top n holds every passage of the collection's top n
// it has), pools them as Snapshot::search() pools one index's, and runs the
// same assemble_pool() and rank_pool(). Ties break by the collection's order
// of documents and the passage's position in its document: one index's
// passage number.
#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <oneapi/tbb/parallel_invoke.h>

#include <medsearch/shard.h>

#include "core/index/index_impl.h"
#include "core/internal/binary_io.h"
#include "core/rank/features.h"
#include "core/vector/kernels/distance.h"

namespace medsearch {
namespace {

constexpr uint32_t kPlanMagic = 0x4e4c5053;    // "SPLN"
constexpr uint32_t kAnswerMagic = 0x534e4153;  // "SANS"
constexpr uint32_t kMaxDepth = 1u << 24;       // k, candidates, rerank_depth, ef

// The query of a plan.
struct Plan {
  uint64_t stats_version = 0;
  SearchOptions options;  // mode resolved; query_vector unset (see vector)
  std::vector<std::string> terms;
  std::vector<float> weights;
  std::vector<std::array<uint32_t, 2>> doc_freq;
  struct Phrase {
    std::string text;
    uint32_t first, second;  // positions in terms
  };
  std::vector<Phrase> phrases;
  std::vector<float> vector;
  float unknown_share = 0;
};

void put_filters(const SearchFilters& f, internal::BinaryWriter* out) {
  out->put_strings(f.audience);
  out->put_strings(f.cancer_type);
  out->put_strings(f.corpus);
  out->put_string(f.reviewed_after);
  out->put<uint32_t>(static_cast<uint32_t>(f.metadata.size()));
  for (const MetadataFilter& m : f.metadata) {
    out->put_string(m.key);
    out->put_strings(m.any_of);
    out->put_string(m.min);
    out->put_string(m.max);
  }
}

Status get_filters(internal::BinaryReader* in, SearchFilters* f) {
  MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&f->audience));
  MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&f->cancer_type));
  MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&f->corpus));
  MEDSEARCH_RETURN_IF_ERROR(in->get_string(&f->reviewed_after));
  uint32_t n = 0;
  MEDSEARCH_RETURN_IF_ERROR(in->get(&n));
  if (n > 1024) return Status::corrupt("sharded query plan: too many metadata filters");
  f->metadata.resize(n);
  for (MetadataFilter& m : f->metadata) {
    MEDSEARCH_RETURN_IF_ERROR(in->get_string(&m.key));
    MEDSEARCH_RETURN_IF_ERROR(in->get_strings(&m.any_of));
    MEDSEARCH_RETURN_IF_ERROR(in->get_string(&m.min));
    MEDSEARCH_RETURN_IF_ERROR(in->get_string(&m.max));
  }
  return Status::ok();
}

std::string serialize(const Plan& p) {
  internal::BinaryWriter out;
  out.put(kPlanMagic);
  out.put(p.stats_version);
  const SearchOptions& o = p.options;
  out.put(o.k);
  out.put(static_cast<uint8_t>(o.level));
  out.put(static_cast<uint8_t>(o.mode));
  out.put(o.candidates);
  out.put(static_cast<uint8_t>(o.fusion));
  out.put(o.bm25_weight);
  out.put(o.rerank_depth);
  out.put(o.max_per_doc);
  out.put(o.mmr);
  out.put(o.ef);
  out.put(static_cast<uint8_t>(o.explain));
  put_filters(o.filters, &out);
  out.put_strings(p.terms);
  out.put_vector(p.weights);
  out.put_vector(p.doc_freq);
  out.put<uint32_t>(static_cast<uint32_t>(p.phrases.size()));
  for (const auto& ph : p.phrases) {
    out.put_string(ph.text);
    out.put(ph.first);
    out.put(ph.second);
  }
  out.put_vector(p.vector);
  out.put(p.unknown_share);
  return std::move(out.buffer());
}

Result<Plan> parse_plan(std::string_view bytes) {
  internal::BinaryReader in(bytes, "sharded query plan");
  Plan p;
  uint32_t magic = 0;
  MEDSEARCH_RETURN_IF_ERROR(in.get(&magic));
  if (magic != kPlanMagic) return Status::corrupt("not a sharded query plan");
  MEDSEARCH_RETURN_IF_ERROR(in.get(&p.stats_version));
  SearchOptions& o = p.options;
  uint8_t level = 0, mode = 0, fusion = 0, explain = 0;
  MEDSEARCH_RETURN_IF_ERROR(in.get(&o.k));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&level));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&mode));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&o.candidates));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&fusion));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&o.bm25_weight));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&o.rerank_depth));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&o.max_per_doc));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&o.mmr));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&o.ef));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&explain));
  if (level > 1 || mode > 3 || fusion > 1) return Status::corrupt("sharded query plan: bad level, mode or fusion");
  // Beyond these, k and the depths (and their multiples) would overflow; plan() never writes them.
  if (o.k > kMaxDepth || o.candidates > kMaxDepth || o.rerank_depth > kMaxDepth || o.ef > kMaxDepth) {
    return Status::corrupt("sharded query plan: k, candidates, rerank_depth or ef out of range");
  }
  o.level = static_cast<ResultLevel>(level);
  o.mode = static_cast<SearchMode>(mode);
  o.fusion = static_cast<Fusion>(fusion);
  o.explain = explain != 0;
  MEDSEARCH_RETURN_IF_ERROR(get_filters(&in, &o.filters));
  MEDSEARCH_RETURN_IF_ERROR(in.get_strings(&p.terms));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&p.weights));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&p.doc_freq));
  uint32_t phrases = 0;
  MEDSEARCH_RETURN_IF_ERROR(in.get(&phrases));
  if (phrases > rank::kMaxPhrases) return Status::corrupt("sharded query plan: too many phrases");
  p.phrases.resize(phrases);
  for (auto& ph : p.phrases) {
    MEDSEARCH_RETURN_IF_ERROR(in.get_string(&ph.text));
    MEDSEARCH_RETURN_IF_ERROR(in.get(&ph.first));
    MEDSEARCH_RETURN_IF_ERROR(in.get(&ph.second));
    if (ph.first >= p.terms.size() || ph.second >= p.terms.size()) return Status::corrupt("sharded query plan: bad phrase");
  }
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&p.vector));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&p.unknown_share));
  if (!in.at_end()) return in.corrupt("bytes after the plan");
  if (p.weights.size() != p.terms.size() || p.doc_freq.size() != p.terms.size()) {
    return Status::corrupt("sharded query plan: term lists differ in length");
  }
  MEDSEARCH_RETURN_IF_ERROR(validate(o));
  return p;
}

// A passage on a shard's lists.
struct Entry {
  uint64_t order = 0;    // its document's position in the collection
  uint32_t passage = 0;  // in the shard's snapshot
  uint32_t doc = 0;      // in the shard's snapshot
  uint32_t ordinal = 0;  // in its document
  float body = 0, heading = 0, dense = 0;  // bm25 and dense modes: the hit's parts
};  // no padding: sent as bytes
static_assert(sizeof(Entry) == 32);
static_assert(sizeof(rank::PassageFacts) == 32);

// A list of a shard's answer, best first.
struct ListItem {
  uint32_t entry;  // position in Answer::entries
  float score;
};
using List = std::vector<ListItem>;

struct Answer {
  uint32_t shard = 0;
  uint64_t stats_version = 0;
  uint64_t generation = 0;
  uint64_t plan_checksum = 0;
  std::vector<internal::Generation::UnknownFilter> unknown;
  std::vector<Entry> entries;
  List bm25, dense;
  rank::PassageRows rows;    // hybrid and rerank: per entry
  std::vector<float> vectors;  // mmr < 1: per entry, dim floats
};

std::string serialize(const Answer& a) {
  internal::BinaryWriter out;
  out.put(kAnswerMagic);
  out.put(a.shard);
  out.put(a.stats_version);
  out.put(a.generation);
  out.put(a.plan_checksum);
  out.put<uint32_t>(static_cast<uint32_t>(a.unknown.size()));
  for (const auto& u : a.unknown) {
    out.put_string(u.key);
    out.put_string(u.message);
  }
  out.put_vector(a.entries);
  out.put_vector(a.bm25);
  out.put_vector(a.dense);
  out.put_vector(a.rows.facts);
  out.put_vector(a.rows.body);
  out.put_vector(a.rows.heading);
  out.put<uint64_t>(a.rows.num_terms);
  out.put_vector(a.vectors);
  return std::move(out.buffer());
}

Result<Answer> parse_answer(std::string_view bytes, size_t i) {
  const std::string name = "answer " + std::to_string(i) + " of a sharded search";
  internal::BinaryReader in(bytes, name);
  Answer a;
  uint32_t magic = 0, unknown = 0;
  MEDSEARCH_RETURN_IF_ERROR(in.get(&magic));
  if (magic != kAnswerMagic) return Status::corrupt(name + ": not a shard's answer");
  MEDSEARCH_RETURN_IF_ERROR(in.get(&a.shard));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&a.stats_version));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&a.generation));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&a.plan_checksum));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&unknown));
  if (unknown > 4096) return Status::corrupt(name + ": too many unknown filters");
  a.unknown.resize(unknown);
  for (auto& u : a.unknown) {
    MEDSEARCH_RETURN_IF_ERROR(in.get_string(&u.key));
    MEDSEARCH_RETURN_IF_ERROR(in.get_string(&u.message));
  }
  uint64_t num_terms = 0;
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&a.entries));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&a.bm25));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&a.dense));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&a.rows.facts));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&a.rows.body));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&a.rows.heading));
  MEDSEARCH_RETURN_IF_ERROR(in.get(&num_terms));
  MEDSEARCH_RETURN_IF_ERROR(in.get_vector(&a.vectors));
  if (!in.at_end()) return in.corrupt("bytes after the answer");
  a.rows.num_terms = num_terms;
  for (const List* list : {&a.bm25, &a.dense}) {
    for (const auto& [e, score] : *list) {
      if (e >= a.entries.size()) return Status::corrupt(name + ": a list names an entry it does not hold");
    }
  }
  const size_t n = a.entries.size();
  if (!a.rows.facts.empty() &&
      (a.rows.facts.size() != n || a.rows.body.size() != n * num_terms || a.rows.heading.size() != n * num_terms)) {
    return Status::corrupt(name + ": passage rows do not match its entries");
  }
  return a;
}

}  // namespace

uint32_t shard_of(std::string_view doc_id, uint32_t shards) {
  return shards ? static_cast<uint32_t>(internal::xxh3_64(doc_id) % shards) : 0;
}

// ---------------------------------------------------------------------------
// Shard side.

struct ShardSearcher::Impl {
  std::vector<uint64_t> order;                 // per document
  std::vector<float> heading_commonness;       // per passage, with the collection's heading counts
};

ShardSearcher::~ShardSearcher() = default;

Result<std::shared_ptr<const ShardSearcher>> ShardSearcher::create(uint32_t shard, std::shared_ptr<const Snapshot> snapshot,
                                                                   std::shared_ptr<const CollectionStats> stats,
                                                                   std::vector<uint64_t> order) {
  if (!snapshot || !stats) return Status::invalid_argument("a shard needs a snapshot and statistics");
  const internal::Generation& g = *snapshot->parts().gen;
  if (order.size() != g.docs.size()) {
    return Status::invalid_argument("shard " + std::to_string(shard) + ": " + std::to_string(order.size()) +
                                    " document positions for " + std::to_string(g.docs.size()) + " documents");
  }
  for (size_t d = 1; d < order.size(); ++d) {
    if (order[d] <= order[d - 1]) {
      return Status::invalid_argument("shard " + std::to_string(shard) + ": document positions are not ascending");
    }
  }
  if (!(stats->options == snapshot->options()) || stats->dim != g.dim || stats->model_id != g.model_id) {
    return Status::invalid_argument("shard " + std::to_string(shard) +
                                    ": the collection statistics are of indexes with other build options or vectors");
  }
  if (shard >= stats->shards) {
    return Status::invalid_argument("shard " + std::to_string(shard) + " of a collection of " +
                                    std::to_string(stats->shards) + " shards");
  }
  auto out = std::shared_ptr<ShardSearcher>(new ShardSearcher());
  out->shard_ = shard;
  out->snapshot_ = std::move(snapshot);
  out->stats_ = std::move(stats);
  out->impl_ = std::make_unique<Impl>();
  out->impl_->order = std::move(order);
  auto& commonness = out->impl_->heading_commonness;
  commonness.resize(g.passages.size());
  for (size_t p = 0; p < g.passages.size(); ++p) {
    const auto& path = g.heading_path(static_cast<uint32_t>(p));
    commonness[p] = path.empty() ? 0.0f : std::log1p(static_cast<float>(out->stats_->heading_count(path.back())));
  }
  return std::shared_ptr<const ShardSearcher>(std::move(out));
}

Result<std::string> ShardSearcher::answer(std::string_view plan_bytes) const {
  auto parsed = parse_plan(plan_bytes);
  if (!parsed) return parsed.status();
  const Plan& plan = *parsed;
  if (plan.stats_version != stats_->version) {
    return Status::stale("shard " + std::to_string(shard_) + " holds collection statistics version " +
                         std::to_string(stats_->version) + ", the query was planned with version " +
                         std::to_string(plan.stats_version));
  }
  const internal::Generation& g = *snapshot_->parts().gen;
  const lexical::Bm25Index& bm25 = *g.bm25;
  const SearchOptions& o = plan.options;
  const bool doc_level = o.level == ResultLevel::kDocument;
  Answer a;
  a.shard = shard_;
  a.stats_version = stats_->version;
  a.generation = g.generation;
  a.plan_checksum = internal::xxh3_64(plan_bytes);

  std::vector<uint8_t> allowed;
  if (!o.filters.empty()) {
    auto compiled = g.compile_filters(o.filters, &a.unknown);
    if (!compiled) return compiled.status();
    allowed = std::move(compiled).value();
  }
  // The plan's terms in this shard's vocabulary; the ones it lacks match nothing here.
  std::vector<lexical::QueryTerm> terms(plan.terms.size());
  std::vector<lexical::QueryTerm> held;
  std::vector<std::array<uint32_t, lexical::kNumFields>> held_df;
  for (size_t t = 0; t < plan.terms.size(); ++t) {
    const auto id = bm25.find_term(plan.terms[t]);
    terms[t] = {id ? *id : rank::kNoTerm, plan.weights[t]};
    if (id) {
      held.push_back(terms[t]);
      held_df.push_back(plan.doc_freq[t]);
    }
  }
  lexical::ScoringStats stats;
  stats.passages = stats_->passages;
  stats.length_sum[0] = stats_->length_sum[0];
  stats.length_sum[1] = stats_->length_sum[1];
  stats.doc_freq = held_df;
  lexical::ScoringStats all_stats = stats;
  all_stats.doc_freq = plan.doc_freq;
  if (o.mode != SearchMode::kBm25 && (g.dim == 0 || plan.vector.size() != g.dim)) {
    return Status::invalid_argument("shard " + std::to_string(shard_) + " has no passage vectors of the query's size");
  }

  lexical::Bm25Index::Options bo;
  bo.group_of = g.passage_doc;
  bo.group_allowed = allowed;
  bo.num_groups = static_cast<uint32_t>(g.docs.size());
  std::vector<lexical::ScoredPassage> lexical_list;
  Result<std::vector<lexical::ScoredPassage>> dense_list = std::vector<lexical::ScoredPassage>{};
  const bool pooled = o.mode == SearchMode::kHybrid || o.mode == SearchMode::kRerank;
  if (o.mode == SearchMode::kBm25) {
    bo.k = o.k;
    bo.one_per_group = doc_level;
    lexical_list = bm25.search(held, bo, &stats);
  } else if (o.mode == SearchMode::kDense) {
    dense_list = g.dense_search(plan.vector, allowed, internal::dense_depth(o), internal::dense_ef(o));
  } else {
    const uint32_t depth = internal::pool_depth(o);
    const uint32_t ef = internal::pool_ef(o, depth);
    bo.k = depth;
    tbb::parallel_invoke([&] { lexical_list = bm25.search(held, bo, &stats); },
                         [&] { dense_list = g.dense_search(plan.vector, allowed, depth, ef); });
  }
  if (!dense_list) return dense_list.status();

  // Entries: the passages of both lists, each once.
  std::unordered_map<uint32_t, uint32_t> entry_of;
  auto entry = [&](uint32_t p) {
    auto [it, added] = entry_of.try_emplace(p, static_cast<uint32_t>(a.entries.size()));
    if (added) {
      const uint32_t doc = g.passage_doc[p];
      a.entries.push_back({.order = impl_->order[doc], .passage = p, .doc = doc, .ordinal = p - g.doc_first_passage[doc]});
    }
    return it->second;
  };
  for (const auto& r : lexical_list) a.bm25.push_back({entry(r.passage), r.score});
  for (const auto& r : *dense_list) a.dense.push_back({entry(r.passage), r.score});

  std::vector<uint32_t> passages(a.entries.size());
  for (size_t i = 0; i < passages.size(); ++i) passages[i] = a.entries[i].passage;
  if (pooled) {
    rank::CorpusView view = g.corpus_view();
    view.passage_heading_commonness = impl_->heading_commonness;
    // The plan's phrases with this shard's term ids (kNoTerm where it lacks a word).
    std::vector<rank::QueryPhrase> phrases;
    for (const auto& ph : plan.phrases) phrases.push_back({ph.text, terms[ph.first].term_id, terms[ph.second].term_id});
    a.rows = rank::describe_passages(view, terms, plan.vector, passages, phrases, &all_stats);
    if (o.mmr < 1.0f) {
      a.vectors.reserve(passages.size() * g.dim);
      for (uint32_t p : passages) {
        const auto row = snapshot_->vector(p);
        a.vectors.insert(a.vectors.end(), row.begin(), row.end());
      }
    }
  } else if (o.explain) {
    // The hits' parts, as Snapshot::search() explains them.
    for (Entry& e : a.entries) {
      e.body = bm25.field_score(held, e.passage, lexical::kBody, &stats);
      e.heading = bm25.field_score(held, e.passage, lexical::kHeading, &stats);
      if (g.dim && plan.vector.size() == g.dim) e.dense = g.dot(plan.vector, e.passage);
    }
  }
  return serialize(a);
}

// ---------------------------------------------------------------------------
// Coordinator side.

struct Coordinator::Cache {
  text::Analyzer analyzer;
  std::vector<float> audience_direction;
};

Coordinator::Coordinator(std::shared_ptr<const CollectionStats> stats, std::shared_ptr<const embed::Embedder> embedder,
                         std::shared_ptr<const rank::Reranker> reranker)
    : stats_(std::move(stats)),
      embedder_(std::move(embedder)),
      reranker_(reranker ? std::move(reranker) : rank::Reranker::builtin()),
      cache_(std::make_unique<Cache>(Cache{text::Analyzer(stats_->options.analyzer), stats_->audience_direction()})) {}

Coordinator::~Coordinator() = default;

SearchMode Coordinator::resolve_mode(SearchMode mode) const {
  if (mode != SearchMode::kAuto) return mode;
  return stats_->dim ? SearchMode::kRerank : SearchMode::kBm25;
}

Result<std::string> Coordinator::plan(std::string_view query, const SearchOptions& options) const {
  Plan p;
  p.stats_version = stats_->version;
  p.options = options;
  p.options.mode = resolve_mode(options.mode);
  p.options.query_vector = {};
  const SearchMode mode = p.options.mode;
  const bool needs_text = mode != SearchMode::kDense || options.query_vector.empty();
  if (needs_text && internal::is_blank(query)) return Status::invalid_argument("empty query");
  MEDSEARCH_RETURN_IF_ERROR(validate(options));
  if (options.k > kMaxDepth || options.candidates > kMaxDepth || options.rerank_depth > kMaxDepth ||
      options.ef > kMaxDepth) {
    return Status::invalid_argument("k, candidates, rerank_depth and ef must be at most " + std::to_string(kMaxDepth));
  }
  if (needs_text) {
    std::vector<text::Token> tokens;
    cache_->analyzer.analyze(query, &tokens);
    // The known terms in term order with their counts, as Bm25Index::resolve() gives them.
    std::map<std::string_view, std::pair<size_t, float>> known;  // term -> (stats position, count)
    float count = 0;
    for (const auto& t : tokens) {
      const auto id = stats_->find_term(t.term);
      if (!id) continue;
      auto [it, added] = known.try_emplace(stats_->terms[*id], *id, 0.0f);
      it->second.second += 1.0f;
      count += 1.0f;
    }
    for (const auto& [term, v] : known) {
      p.terms.emplace_back(term);
      p.weights.push_back(v.second);
      p.doc_freq.push_back(stats_->doc_freq[v.first]);
    }
    if (mode == SearchMode::kHybrid || mode == SearchMode::kRerank) {
      p.unknown_share = internal::unknown_share(tokens.size(), count);
      const auto phrases = rank::query_phrases(query, tokens, [&](std::string_view term) -> std::optional<uint32_t> {
        const auto id = stats_->find_term(term);
        if (!id) return std::nullopt;
        return static_cast<uint32_t>(*id);
      });
      for (const auto& ph : phrases) {
        auto position = [&](uint32_t id) {
          return static_cast<uint32_t>(std::find(p.terms.begin(), p.terms.end(), stats_->terms[id]) - p.terms.begin());
        };
        p.phrases.push_back({ph.text, position(ph.first_term), position(ph.second_term)});
      }
    }
  }
  if (mode == SearchMode::kBm25) {
    // A vector given with a bm25 query only explains the hits (their dense_score), as Python's
    // Index.search explains them.
    if (options.query_vector.size() == stats_->dim && stats_->dim > 0) {
      p.vector.assign(options.query_vector.begin(), options.query_vector.end());
    }
  } else {
    if (stats_->dim == 0) {
      return Status::invalid_argument("this index has no passage vectors (build it with an encoder), so only mode bm25");
    }
    if (!options.query_vector.empty()) {
      MEDSEARCH_RETURN_IF_ERROR(internal::check_query_vector(options.query_vector, stats_->dim));
      p.vector.assign(options.query_vector.begin(), options.query_vector.end());
    } else {
      if (!embedder_) return Status::invalid_argument("no encoder attached to embed the query (attach one, or pass a query vector)");
      if (embedder_->model_id() != stats_->model_id) {
        return Status::invalid_argument("the encoder is '" + embedder_->model_id() + "', the index's vectors are '" +
                                        stats_->model_id + "'");
      }
      p.vector.resize(stats_->dim);
      const std::string_view texts[1] = {query};
      MEDSEARCH_RETURN_IF_ERROR(embedder_->embed(texts, embed::TextKind::kQuery, p.vector));
    }
  }
  return serialize(p);
}

namespace {

// A passage on a shard's list, as the merge sees it.
struct Listed {
  uint32_t shard;
  uint32_t entry;
  float score;
  uint64_t order;
  uint32_t ordinal;
};

// Best first; ties by the collection's passage order (one index's passage number).
bool listed_better(const Listed& a, const Listed& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.order != b.order) return a.order < b.order;
  return a.ordinal < b.ordinal;
}

// The collection's top `n` of one list kind, from the shards' lists.
std::vector<Listed> merge_lists(const std::vector<Answer>& answers, List Answer::*list, size_t n) {
  std::vector<Listed> all;
  for (const Answer& a : answers) {
    for (const auto& [e, score] : a.*list) {
      all.push_back({a.shard, e, score, a.entries[e].order, a.entries[e].ordinal});
    }
  }
  std::sort(all.begin(), all.end(), listed_better);
  if (all.size() > n) all.resize(n);
  return all;
}

}  // namespace

Result<ShardedResponse> Coordinator::merge(std::string_view plan_bytes, std::span<const std::string> answer_bytes) const {
  auto parsed = parse_plan(plan_bytes);
  if (!parsed) return parsed.status();
  const Plan& plan = *parsed;
  const SearchOptions& o = plan.options;
  const bool doc_level = o.level == ResultLevel::kDocument;
  if (answer_bytes.size() != stats_->shards) {
    return Status::invalid_argument(std::to_string(answer_bytes.size()) + " answers for a collection of " +
                                    std::to_string(stats_->shards) + " shards");
  }
  const uint64_t checksum = internal::xxh3_64(plan_bytes);
  std::vector<Answer> answers(stats_->shards);
  std::vector<uint8_t> seen(stats_->shards, 0);
  for (size_t i = 0; i < answer_bytes.size(); ++i) {
    auto a = parse_answer(answer_bytes[i], i);
    if (!a) return a.status();
    if (a->shard >= stats_->shards || seen[a->shard]) {
      return Status::invalid_argument("answer " + std::to_string(i) + " is of shard " + std::to_string(a->shard) +
                                      ", out of range or answered twice");
    }
    if (a->plan_checksum != checksum) return Status::invalid_argument("answer " + std::to_string(i) + " is to another query");
    if (a->stats_version != stats_->version || plan.stats_version != stats_->version) {
      return Status::stale("shard " + std::to_string(a->shard) + " answered with statistics version " +
                           std::to_string(a->stats_version) + ", the coordinator holds " + std::to_string(stats_->version));
    }
    seen[a->shard] = 1;
    answers[a->shard] = std::move(a).value();
  }
  // A filter value is unknown when no shard has it (each notes the ones it lacks).
  for (const auto& u : answers[0].unknown) {
    const bool nowhere = std::all_of(answers.begin(), answers.end(), [&](const Answer& a) {
      return std::any_of(a.unknown.begin(), a.unknown.end(), [&](const auto& v) { return v.key == u.key; });
    });
    if (nowhere) return Status::invalid_argument(u.message);
  }

  ShardedResponse response;
  response.mode = o.mode;
  response.stats_version = stats_->version;
  for (const Answer& a : answers) response.generations.push_back(a.generation);
  auto plain_hit = [&](const Listed& l) {
    const Entry& e = answers[l.shard].entries[l.entry];
    ShardedHit h;
    h.shard = l.shard;
    h.hit.passage = e.passage;
    h.hit.score = l.score;
    h.hit.body_score = e.body;
    h.hit.heading_score = e.heading;
    h.hit.dense_score = e.dense;
    return h;
  };
  if (o.mode == SearchMode::kBm25) {
    for (const Listed& l : merge_lists(answers, &Answer::bm25, o.k)) response.hits.push_back(plain_hit(l));
    return response;
  }
  if (o.mode == SearchMode::kDense) {
    // Snapshot::search()'s dense list: k passages, or enough to find k documents.
    const auto ranked = merge_lists(answers, &Answer::dense, internal::dense_depth(o));
    std::unordered_set<uint64_t> docs;  // by collection order
    for (const Listed& l : ranked) {
      if (response.hits.size() == o.k) break;
      if (doc_level && !docs.insert(l.order).second) continue;
      response.hits.push_back(plain_hit(l));
    }
    return response;
  }

  // Hybrid and rerank: the collection's lists, pooled in first-seen order.
  const uint32_t depth = internal::pool_depth(o);
  const auto bm25 = merge_lists(answers, &Answer::bm25, depth);
  const auto dense = merge_lists(answers, &Answer::dense, depth);
  struct Pooled {
    uint32_t shard, entry;
    uint64_t order;
    uint32_t ordinal;
  };
  std::vector<Pooled> pool;
  std::vector<std::array<uint32_t, 2>> ranks;
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> slot;  // (shard, entry) -> pool position
  auto add = [&](const std::vector<Listed>& list, int side) {
    for (uint32_t r = 0; r < list.size(); ++r) {
      const Listed& l = list[r];
      auto [it, added] = slot.try_emplace({l.shard, l.entry}, static_cast<uint32_t>(pool.size()));
      if (added) {
        pool.push_back({l.shard, l.entry, l.order, l.ordinal});
        ranks.push_back({rank::kNotListed, rank::kNotListed});
      }
      ranks[it->second][side] = r;
    }
  };
  add(bm25, 0);
  add(dense, 1);
  if (pool.empty()) return response;
  // Pool passages numbered in the collection's order, so ties break as one index's passage numbers do.
  const size_t n = pool.size(), nt = plan.terms.size();
  std::vector<uint32_t> by_order(n);
  for (uint32_t i = 0; i < n; ++i) by_order[i] = i;
  std::sort(by_order.begin(), by_order.end(), [&](uint32_t a, uint32_t b) {
    return pool[a].order != pool[b].order ? pool[a].order < pool[b].order : pool[a].ordinal < pool[b].ordinal;
  });
  std::vector<uint32_t> number(n);
  for (uint32_t r = 0; r < n; ++r) number[by_order[r]] = r;
  // The candidates' rows, with document and section keys unique over the shards.
  rank::PassageRows rows;
  rows.num_terms = nt;
  rows.facts.resize(n);
  rows.body.resize(n * nt);
  rows.heading.resize(n * nt);
  const bool mmr = o.mmr < 1.0f;
  std::vector<float> vectors(mmr ? n * stats_->dim : 0);
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> doc_key, section_key;
  std::vector<uint32_t> passage_doc(n);
  for (size_t i = 0; i < n; ++i) {
    const Answer& a = answers[pool[i].shard];
    if (a.rows.facts.size() != a.entries.size() || a.rows.num_terms != nt) {
      return Status::invalid_argument("shard " + std::to_string(a.shard) + " answered without the pool's passage rows");
    }
    const uint32_t e = pool[i].entry;
    rank::PassageFacts f = a.rows.facts[e];
    f.doc = doc_key.try_emplace({a.shard, f.doc}, static_cast<uint32_t>(doc_key.size())).first->second;
    f.section = section_key.try_emplace({a.shard, f.section}, static_cast<uint32_t>(section_key.size())).first->second;
    rows.facts[i] = f;
    passage_doc[number[i]] = f.doc;
    std::copy_n(a.rows.body.begin() + size_t{e} * nt, nt, rows.body.begin() + i * nt);
    std::copy_n(a.rows.heading.begin() + size_t{e} * nt, nt, rows.heading.begin() + i * nt);
    if (mmr) {
      if (a.vectors.size() != a.entries.size() * size_t{stats_->dim}) {
        return Status::invalid_argument("shard " + std::to_string(a.shard) + " answered without the pool's vectors");
      }
      std::copy_n(a.vectors.begin() + size_t{e} * stats_->dim, stats_->dim, vectors.begin() + size_t{number[i]} * stats_->dim);
    }
  }
  rank::QuerySide q;
  q.weight = plan.weights;
  for (const auto& df : plan.doc_freq) {
    q.idf_body.push_back(lexical::lucene_idf(static_cast<double>(stats_->passages), df[0]));
    q.idf_heading.push_back(lexical::lucene_idf(static_cast<double>(stats_->passages), df[1]));
  }
  q.phrases = plan.phrases.size();
  q.has_vectors = !plan.vector.empty() && stats_->dim > 0;
  const auto& direction = cache_->audience_direction;
  q.audience = q.has_vectors && direction.size() == stats_->dim
                   ? vector::kernels::best_kernels().dot_f32(plan.vector.data(), direction.data(), stats_->dim)
                   : 0.0f;
  q.has_sections = true;
  q.heading_weight = stats_->options.bm25.heading_weight;
  std::vector<rank::Candidate> cands = rank::assemble_pool(q, number, ranks, static_cast<uint32_t>(bm25.size()),
                                                           static_cast<uint32_t>(dense.size()), rows);
  rank::CorpusView view;
  view.passage_doc = passage_doc;
  view.vectors = vectors;
  view.dim = mmr ? stats_->dim : 0;
  const internal::RankedPool ranked = internal::rank_pool(&cands, o, *reranker_, view, plan.unknown_share);
  response.coverage = ranked.coverage;
  for (uint32_t i : ranked.shown) {
    const rank::Candidate& c = cands[i];
    const Pooled& from = pool[by_order[c.passage]];
    ShardedHit h;
    h.shard = from.shard;
    h.hit.passage = answers[from.shard].entries[from.entry].passage;
    h.hit.score = c.score;
    h.hit.body_score = c.body;
    h.hit.heading_score = c.heading;
    h.hit.dense_score = c.dense;
    if (o.explain) {
      h.hit.has_features = true;
      h.hit.features = c.features;
    }
    response.hits.push_back(h);
  }
  return response;
}

}  // namespace medsearch
