// options_io.cc: BuildOptions in documents.bin, and validate(). A field
// added to BuildOptions must be added to both functions here, to validate()
// if it has a range, and to tests/index/options_round_trip_test.cc.
#include "core/index/options_io.h"

#include <cmath>
#include <utility>

#include "core/text/analyzer.h"

namespace medsearch {

Status validate(const BuildOptions& o) {
  auto bad = [](const std::string& what) { return Status::invalid_argument("BuildOptions: " + what); };
  if (o.analyzer.stem) {
    if (auto analyzer = text::Analyzer::create(o.analyzer); !analyzer) return bad(analyzer.status().message());
  }
  for (const auto& [name, c] : {std::pair{"markdown_chunker", &o.markdown_chunker}, std::pair{"plain_chunker", &o.plain_chunker}}) {
    if (c->max_tokens == 0) return bad(std::string(name) + ".max_tokens must be at least 1");
    if (c->overlap_tokens >= c->max_tokens) {
      return bad(std::string(name) + ".overlap_tokens (" + std::to_string(c->overlap_tokens) +
                 ") must be below max_tokens (" + std::to_string(c->max_tokens) + ")");
    }
  }
  const auto& p = o.bm25;
  if (!(std::isfinite(p.k1) && p.k1 >= 0)) return bad("bm25.k1 must be finite and >= 0");
  if (!(p.b >= 0 && p.b <= 1)) return bad("bm25.b must be in [0, 1]");
  if (!(std::isfinite(p.heading_weight) && p.heading_weight >= 0)) return bad("bm25.heading_weight must be finite and >= 0");
  if (o.embed_batch == 0) return bad("embed_batch must be at least 1");
  if (o.hnsw_m < 2 || o.hnsw_m > 2048) return bad("hnsw_m must be in [2, 2048]");
  if (o.hnsw_ef_construction == 0) return bad("hnsw_ef_construction must be at least 1");
  return Status::ok();
}

void write_options(const BuildOptions& o, internal::BinaryWriter* out) {
  const auto& a = o.analyzer;
  out->put<uint8_t>(a.stem);
  out->put<uint8_t>(a.remove_stopwords);
  out->put_string(a.stemmer);
  out->put<uint8_t>(a.compound_parts);
  for (const auto* c : {&o.markdown_chunker, &o.plain_chunker}) {
    out->put<uint32_t>(c->max_tokens);
    out->put<uint32_t>(c->overlap_tokens);
    out->put<uint32_t>(c->min_tokens);
  }
  out->put<uint32_t>(o.embed_batch);
  out->put<uint32_t>(o.exact_below);
  out->put<uint32_t>(o.hnsw_m);
  out->put<uint32_t>(o.hnsw_ef_construction);
}

Status read_options(internal::BinaryReader* in, BuildOptions* options) {
  BuildOptions o;
  o.bm25 = options->bm25;
  auto flag = [&](bool* out) -> Status {
    uint8_t v = 0;
    MEDSEARCH_RETURN_IF_ERROR(in->get(&v));
    if (v > 1) return in->corrupt("a build option flag is neither 0 nor 1");
    *out = v;
    return Status::ok();
  };
  auto& a = o.analyzer;
  MEDSEARCH_RETURN_IF_ERROR(flag(&a.stem));
  MEDSEARCH_RETURN_IF_ERROR(flag(&a.remove_stopwords));
  MEDSEARCH_RETURN_IF_ERROR(in->get_string(&a.stemmer));
  MEDSEARCH_RETURN_IF_ERROR(flag(&a.compound_parts));
  for (auto* c : {&o.markdown_chunker, &o.plain_chunker}) {
    MEDSEARCH_RETURN_IF_ERROR(in->get(&c->max_tokens));
    MEDSEARCH_RETURN_IF_ERROR(in->get(&c->overlap_tokens));
    MEDSEARCH_RETURN_IF_ERROR(in->get(&c->min_tokens));
  }
  for (uint32_t* v : {&o.embed_batch, &o.exact_below, &o.hnsw_m, &o.hnsw_ef_construction}) {
    MEDSEARCH_RETURN_IF_ERROR(in->get(v));
  }
  if (Status e = validate(o); !e) {
    // The message may quote a damaged stemmer name: keep it printable ASCII.
    std::string why = e.message();
    for (char& c : why) {
      if (c < 0x20 || c > 0x7e) c = '?';
    }
    return in->corrupt("build options out of range (" + why + ")");
  }
  *options = std::move(o);
  return Status::ok();
}

}  // namespace medsearch
