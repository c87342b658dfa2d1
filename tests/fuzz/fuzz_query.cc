// fuzz_query: the query path of Index (core/index/index.h, pipeline.cc) with
// filters, on tiny indexes built once per process.
//
// Input (text, so seeds stay readable): the first line is the query; each
// further line is "key=value":
//   audience= / cancer_type= / corpus=   filter values, separated by '|'
//   reviewed_after=                      the date filter, as given
//   filter=                              a filter in add_filter()'s text form (metadata keys too)
//   k= candidates= max_per_document= rerank_depth= ef=   unsigned integers (wrap to 32 bits)
//   level= mode= fusion= index=          enum choices, taken modulo their count
//                                        (index: 0 flat vectors, 1 HNSW vectors, 2 no vectors)
//   convex= mmr=                         floats (nan and inf included)
//   explain=                             0 or 1
//   qv=                                  a query vector, floats separated by spaces
// Unknown keys and lines without '=' are ignored.
//
// Every call must return a Status (kInvalidArgument only) or hits that keep
// the contract: at most k, valid passages, filters respected, one passage
// per document at document level, the per-document cap in the hybrid and
// rerank modes, finite scores best first when MMR is off.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/corpus.h>
#include <medsearch/index.h>

#include "tests/fuzz/fuzz_util.h"
#include "tests/index/tiny_corpus.h"

namespace {

using namespace medsearch;

io::Document markdown(std::string id, std::string url, std::string reviewed, std::string title, std::string body) {
  io::Document d;
  d.doc_id = std::move(id);
  d.corpus = "nci-pdq";
  d.url = std::move(url);
  d.last_reviewed = std::move(reviewed);
  d.title = std::move(title);
  d.format = io::DocFormat::kMarkdown;
  d.body = std::move(body);
  io::derive_from_url(d.url, &d.audience, &d.cancer_type);
  if (!d.last_reviewed.empty()) d.metadata.push_back({"lastReviewed", {d.last_reviewed}});
  d.metadata.push_back({"words", {std::to_string(d.body.size() / 6), "many"}});
  return d;
}

io::Document abstract(std::string id, std::string title, std::string text) {
  io::Document d;
  d.doc_id = std::move(id);
  d.corpus = "scifact";
  d.title = std::move(title);
  d.body = std::move(text);
  d.meta_json = R"({"year":"2019"})";
  return d;
}

std::vector<io::Document> corpus() {
  return {
      markdown("types/mesothelioma/hp.md", "https://www.cancer.gov/types/mesothelioma/hp/mesothelioma-treatment-pdq",
               "2024-03-01", "Malignant Mesothelioma Treatment (PDQ)—Health Professional Version",
               "# Malignant Mesothelioma Treatment\n\n## Stage IIIA Disease\n\nPemetrexed plus cisplatin is the "
               "standard first-line chemotherapy for pleural mesothelioma after asbestos exposure.\n\n## Recurrent "
               "Disease\n\nNivolumab and ipilimumab improve survival; PD-L1 \xE2\x89\xA5""50% predicts response.\n"),
      markdown("types/mesothelioma/patient.md", "/types/mesothelioma/patient/mesothelioma-treatment-pdq", "2022-11-15",
               "Malignant Mesothelioma Treatment—Patient Version",
               "## What is mesothelioma?\n\nMesothelioma is a disease in which cancer cells form in the thin tissue "
               "lining the chest or abdomen.\n\n## Treatment options\n\nSurgery, chemotherapy and radiation therapy "
               "are used.\n"),
      markdown("types/lung/hp.md", "https://www.cancer.gov/types/lung/hp/non-small-cell-lung-treatment-pdq", "",
               "Non-Small Cell Lung Cancer Treatment",
               "## Stage IV NSCLC\n\nOsimertinib for EGFR-mutated tumours; pembrolizumab when PD-L1 is high. "
               "Carboplatin with pemetrexed for non-squamous histology.\n\n## Screening\n\nLow-dose CT screening "
               "reduces lung cancer mortality in heavy smokers.\n"),
      markdown("types/breast/patient.md", "/types/breast/patient/breast-treatment-pdq", "2019-07-30",
               "Breast Cancer Treatment—Patient Version",
               "## HER2-positive breast cancer\n\nTrastuzumab targets HER2. Tamoxifen blocks estrogen receptors "
               "in hormone receptor-positive disease.\n"),
      markdown("about-cancer/chemotherapy.md", "/about-cancer/treatment/types/chemotherapy", "2023-01-05",
               "Chemotherapy to Treat Cancer", "Chemotherapy uses drugs to kill cancer cells. Side effects include "
               "nausea, hair loss and fatigue.\n"),
      abstract("4983", "Aspirin and colorectal adenoma",
               "Daily aspirin reduced the incidence of colorectal adenomas in a randomized trial of 1,121 patients."),
      abstract("31715818", "", "Imatinib inhibits BCR-ABL in chronic myeloid leukemia; 5-FU is used in colon cancer."),
      abstract("12345", "Melanoma immunotherapy", "Ipilimumab and nivolumab prolonged survival in advanced melanoma."),
  };
}

std::unique_ptr<Index> make_index(int kind) {
  BuildOptions options;
  options.markdown_chunker.max_tokens = 24;  // a few passages per page
  options.markdown_chunker.overlap_tokens = 4;
  options.exact_below = kind == 1 ? 0 : 5000;
  std::shared_ptr<const embed::Embedder> embedder;
  if (kind != 2) embedder = std::make_shared<testing::TinyEmbedder>();
  auto index = Index::build(corpus(), options, nullptr, embedder);
  FUZZ_CHECK(index.is_ok(), index.status().to_string());
  return std::move(index).value();
}

const Index& index_of(int kind) {
  static const std::unique_ptr<Index> indexes[3] = {make_index(0), make_index(1), make_index(2)};
  return *indexes[kind];
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t end = s.find(sep, pos);
    out.emplace_back(s.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) return out;
    pos = end + 1;
  }
}

uint32_t to_u32(const std::string& s) { return static_cast<uint32_t>(std::strtoull(s.c_str(), nullptr, 0)); }

bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (int kind = 0; kind < 3; ++kind) (void)index_of(kind);  // build before the clock starts
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> lines = split(input, '\n');
  const std::string& query = lines[0];
  SearchOptions o;
  int kind = 0;
  std::vector<float> qv;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t eq = lines[i].find('=');
    if (eq == std::string::npos) continue;
    const std::string key = lines[i].substr(0, eq), value = lines[i].substr(eq + 1);
    if (key == "audience") o.filters.audience = split(value, '|');
    else if (key == "cancer_type") o.filters.cancer_type = split(value, '|');
    else if (key == "corpus") o.filters.corpus = split(value, '|');
    else if (key == "reviewed_after") o.filters.reviewed_after = value;
    else if (key == "filter") (void)add_filter(value, &o.filters);  // a malformed one adds nothing
    else if (key == "k") o.k = to_u32(value);
    else if (key == "candidates") o.candidates = to_u32(value);
    else if (key == "max_per_document") o.max_per_doc = to_u32(value);
    else if (key == "rerank_depth") o.rerank_depth = to_u32(value);
    else if (key == "ef") o.ef = to_u32(value);
    else if (key == "level") o.level = to_u32(value) % 2 ? ResultLevel::kDocument : ResultLevel::kPassage;
    else if (key == "mode") o.mode = static_cast<SearchMode>(to_u32(value) % 5);  // kAuto included
    else if (key == "fusion") o.fusion = static_cast<Fusion>(to_u32(value) % 2);
    else if (key == "index") kind = static_cast<int>(to_u32(value) % 3);
    else if (key == "convex") o.bm25_weight = std::strtof(value.c_str(), nullptr);
    else if (key == "mmr") o.mmr = std::strtof(value.c_str(), nullptr);
    else if (key == "explain") o.explain = value != "0";
    else if (key == "qv") {
      for (const auto& x : split(value, ' ')) {
        if (!x.empty()) qv.push_back(std::strtof(x.c_str(), nullptr));
      }
    }
  }
  o.query_vector = qv;
  const Index& index = index_of(kind);

  auto result = index.search(query, o);
  if (!result.is_ok()) {
    FUZZ_CHECK(result.status().code() == StatusCode::kInvalidArgument, result.status().to_string());
    return 0;
  }
  const auto& hits = result->hits;
  const Snapshot& snapshot = *result->snapshot;
  const SearchMode mode = snapshot.resolve_mode(o.mode);
  FUZZ_CHECK(result->mode == mode, "the response names another mode");
  const bool fused = mode == SearchMode::kHybrid || mode == SearchMode::kRerank;
  FUZZ_CHECK(hits.size() <= o.k && hits.size() <= snapshot.num_passages(), "more hits than k");
  FUZZ_CHECK(std::isnan(result->coverage) || (result->coverage >= 0.0f && result->coverage <= 1.0f),
             "coverage outside [0, 1]");
  std::set<std::string> docs;
  std::map<std::string, uint32_t> per_doc;
  for (size_t i = 0; i < hits.size(); ++i) {
    FUZZ_CHECK(hits[i].passage < snapshot.num_passages(), "passage out of range");
    const Passage h = result->passage(i);
    FUZZ_CHECK(!h.doc_id.empty() && h.end <= snapshot.clean_text(snapshot.document_of(h.number)).size(), h.doc_id);
    FUZZ_CHECK(std::isfinite(hits[i].score), "score is not finite");
    if (i > 0 && (!fused || o.mmr == 1.0f)) FUZZ_CHECK(hits[i - 1].score >= hits[i].score, "hits not best first");
    const auto& f = o.filters;
    FUZZ_CHECK(f.audience.empty() || contains(f.audience, h.audience), "audience filter ignored");
    FUZZ_CHECK(f.cancer_type.empty() || contains(f.cancer_type, h.cancer_type), "cancer type filter ignored");
    FUZZ_CHECK(f.corpus.empty() || contains(f.corpus, h.corpus), "corpus filter ignored");
    FUZZ_CHECK(f.reviewed_after.empty() || (!h.last_reviewed.empty() && h.last_reviewed >= f.reviewed_after.substr(0, 10)),
               "reviewed_after filter ignored: " + h.last_reviewed);
    for (const auto& m : f.metadata) {
      const bool has = std::any_of(h.metadata.begin(), h.metadata.end(), [&](const io::MetaField& x) { return x.key == m.key; });
      FUZZ_CHECK(has, "a hit without the filtered metadata key " + m.key);
    }
    const std::string key = h.corpus + "/" + h.doc_id;
    if (o.level == ResultLevel::kDocument) FUZZ_CHECK(docs.insert(key).second, "a document twice at document level");
    if (fused && o.level == ResultLevel::kPassage && o.max_per_doc > 0) {
      FUZZ_CHECK(++per_doc[key] <= o.max_per_doc, "max_per_document ignored");
    }
  }

  // The other entry points of the same pipeline.
  const std::string queries[] = {query};
  auto batch = index.search_batch(queries, o);
  FUZZ_CHECK(batch.is_ok() && batch->size() == 1 && (*batch)[0].hits.size() == hits.size(),
             "search_batch() differs from search()");
  if (fused) {
    const uint32_t exclude[] = {0, snapshot.num_documents() - 1};
    auto pool = snapshot.candidate_pool(query, o, exclude);
    FUZZ_CHECK(pool.is_ok(), pool.status().to_string());
    for (const auto& c : *pool) {
      FUZZ_CHECK(c.passage < snapshot.num_passages(), "pooled passage out of range");
      const uint32_t d = snapshot.document_of(c.passage);
      FUZZ_CHECK(d != exclude[0] && d != exclude[1], "an excluded document was pooled");
    }
  }
  return 0;
}
