// medsearch: the command-line tool.
//
//   medsearch build CORPUS... -o INDEX        read, chunk and index corpora
//   medsearch search INDEX "query" [-k N]     ranked passages with provenance
//   medsearch run INDEX --queries Q.jsonl ... TREC run for a query set
//   medsearch eval --qrels QRELS --run RUN    nDCG@10, Recall@100, MRR@10
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>

#include <medsearch/build_info.h>
#include <medsearch/corpus.h>
#include <medsearch/encoder.h>
#include <medsearch/eval.h>
#include <medsearch/index.h>

#include "core/internal/json.h"
#include "core/text/analyzer.h"

namespace fs = std::filesystem;
using namespace medsearch;

namespace {

int fail(const Status& st) {
  std::fprintf(stderr, "medsearch: error: %s\n", st.message().c_str());
  return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

// A one-line progress bar on a terminal, a line per stage change otherwise.
class ProgressBar {
 public:
  void operator()(std::string_view stage, size_t done, size_t total) {
    const bool tty = isatty(STDERR_FILENO);
    if (!tty) {  // a line per stage and per tenth of the work, for logs
      const int tenth = total ? static_cast<int>(10 * done / total) : 10;
      if (stage != last_stage_ || tenth != last_tenth_) {
        std::fprintf(stderr, "%.*s: %zu/%zu\n", int(stage.size()), stage.data(), done, total);
        last_stage_ = std::string(stage);
        last_tenth_ = tenth;
      }
      return;
    }
    const int width = 30;
    const int filled = total ? static_cast<int>(width * done / total) : width;
    std::fprintf(stderr, "\r%-10.*s [%s%s] %zu/%zu", int(stage.size()), stage.data(),
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
    last_stage_ = std::string(stage);
  }

 private:
  std::string last_stage_;
  int last_tenth_ = -1;
};

// "key=value" filter arguments -> SearchFilters.
Status parse_filters(const std::vector<std::string>& specs, SearchFilters* f) {
  for (const auto& spec : specs) {
    // The CLI's spellings of the derived fields.
    std::string s = spec;
    for (const char* alias : {"cancer-type=", "type="}) {
      if (s.starts_with(alias)) s = "cancer_type=" + s.substr(std::strlen(alias));
    }
    if (s.starts_with("reviewed-after=")) s = "reviewed_after=" + s.substr(std::strlen("reviewed-after="));
    MEDSEARCH_RETURN_IF_ERROR(add_filter(s, f));
  }
  return Status::ok();
}

// A window of the passage around the first query-term match.
std::string snippet(const Snapshot& index, const Passage& hit, std::string_view query, size_t width) {
  text::Analyzer analyzer(index.options().analyzer);
  std::set<std::string> wanted;
  for (auto& t : analyzer.terms(query)) wanted.insert(t);
  std::vector<text::Token> tokens;
  analyzer.analyze(hit.text, &tokens);
  size_t at = 0;
  for (const auto& t : tokens) {
    if (wanted.count(t.term)) {
      at = t.begin;
      break;
    }
  }
  size_t start = at > width / 4 ? at - width / 4 : 0;
  while (start > 0 && hit.text[start] != ' ') --start;  // start on a word
  std::string out = hit.text.substr(start, width);
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();  // whole UTF-8 chars
  if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80)) out.pop_back();
  for (char& c : out) {
    if (c == '\n') c = ' ';
  }
  return (start > 0 ? "…" : "") + out + (start + width < hit.text.size() ? "…" : "");
}

std::string join_path(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? " > " : "") + parts[i];
  return out;
}

std::string json_string(std::string_view s) { return "\"" + internal::json_escape(s) + "\""; }

std::string json_strings(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_string(v[i]);
  return out + "]";
}

// The largest contributions to a reranked hit's score, "name +0.42, ...".
std::string top_contributions(const Snapshot& index, const Hit& h, size_t n) {
  const rank::FeatureVector parts = index.reranker().contributions(h.features);
  std::vector<uint32_t> order(parts.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return std::abs(parts[a]) > std::abs(parts[b]); });
  std::string out;
  char buf[96];
  for (size_t i = 0; i < std::min(n, order.size()); ++i) {
    std::snprintf(buf, sizeof(buf), "%s%s %+.3f", i ? ", " : "", std::string(rank::feature_names()[order[i]]).c_str(),
                  parts[order[i]]);
    out += buf;
  }
  return out;
}

std::string features_json(const Snapshot& index, const Hit& h) {
  const rank::FeatureVector parts = index.reranker().contributions(h.features);
  std::string out = "\"base\": " + std::to_string(index.reranker().bias()) + ", \"features\": {";
  for (uint32_t i = 0; i < parts.size(); ++i) {
    out += (i ? ", " : "") + json_string(rank::feature_names()[i]) + ": {\"value\": " + std::to_string(h.features[i]) +
           ", \"contribution\": " + std::to_string(parts[i]) + "}";
  }
  return out + "}";
}

// `extra`: the reranker's explanation fields (rerank mode), without braces.
std::string metadata_json(const Passage& h) {
  std::string out = "{";
  for (size_t i = 0; i < h.metadata.size(); ++i) {
    out += (i ? ", " : "") + json_string(h.metadata[i].key) + ": " + json_strings(h.metadata[i].values);
  }
  return out + "}";
}

std::string hit_json(const Hit& hit, const Passage& h, size_t rank, const std::string& extra) {
  return "{\"rank\": " + std::to_string(rank) + ", \"score\": " + std::to_string(hit.score) +
         ", \"passage_id\": " + json_string(h.passage_id) + ", \"doc_id\": " + json_string(h.doc_id) +
         ", \"corpus\": " + json_string(h.corpus) + ", \"title\": " + json_string(h.title) +
         ", \"url\": " + json_string(h.url) + ", \"heading_path\": " + json_strings(h.heading_path) +
         ", \"span\": [" + std::to_string(h.begin) + ", " + std::to_string(h.end) + "]" +
         ", \"audience\": " + json_string(h.audience) + ", \"cancer_type\": " + json_string(h.cancer_type) +
         ", \"last_reviewed\": " + json_string(h.last_reviewed) + ", \"metadata\": " + metadata_json(h) +
         ", \"explain\": {\"bm25_body\": " + std::to_string(hit.body_score) +
         ", \"bm25_heading\": " + std::to_string(hit.heading_score) + ", \"cosine\": " + std::to_string(hit.dense_score) + "}" +
         (extra.empty() ? "" : ", \"reranker\": {" + extra + "}") +
         ", \"text\": " + json_string(h.text) + "}";
}

// --precision, or when not given $MEDSEARCH_ENCODER_PRECISION, else auto.
Result<embed::Precision> precision_of(const std::string& flag) {
  return flag.empty() ? embed::default_precision() : embed::parse_precision(flag);
}

// The encoder from --model-dir (default: the default model) at --precision.
Result<std::unique_ptr<embed::BertEncoder>> load_encoder(const std::string& model_dir, const std::string& precision) {
  auto p = precision_of(precision);
  if (!p) return p.status();
  return embed::BertEncoder::load(model_dir.empty() ? embed::default_model_dir() : fs::path(model_dir), *p);
}

// Loads an index and, when it holds vectors and the mode needs them, its encoder.
Result<std::unique_ptr<Index>> open_index(const std::string& dir, const std::string& mode_name,
                                          const std::string& model_dir, const std::string& precision,
                                          SearchMode* mode) {
  auto index = Index::load(dir);
  if (!index) return index.status();
  const bool dense = (*index)->has_vectors();
  auto parsed = parse_mode(mode_name);
  if (!parsed) return parsed.status();
  *mode = (*index)->snapshot()->resolve_mode(*parsed);
  if (*mode != SearchMode::kBm25) {
    if (!dense) return Status::invalid_argument("this index has no passage vectors; use --mode bm25 or rebuild it");
    // The model the index's vectors were made with, unless --model-dir says otherwise.
    auto p = precision_of(precision);
    if (!p) return p.status();
    auto encoder = model_dir.empty() ? embed::encoder_for((*index)->stats().model_id, *p)
                                     : embed::BertEncoder::load(model_dir, *p);
    if (!encoder) return encoder.status();
    std::shared_ptr<const embed::Embedder> shared = std::move(encoder).value();
    MEDSEARCH_RETURN_IF_ERROR((*index)->attach_embedder(shared));
  }
  return index;
}

// Pipeline options shared by search and run.
struct PipelineFlags {
  std::string mode = "auto";
  std::string fusion = "convex";
  std::string reranker;
};

void add_pipeline_options(CLI::App* cmd, PipelineFlags* flags, SearchOptions* o) {
  cmd->add_option("--mode", flags->mode,
                  "bm25, dense, hybrid (fused), rerank (fused + learned reranker), or auto (rerank when the index has "
                  "vectors, else bm25)");
  cmd->add_option("--fusion", flags->fusion, "How hybrid and rerank fuse: convex or rrf");
  cmd->add_option("--bm25-weight", o->bm25_weight, "Weight of BM25 in convex fusion")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--candidates", o->candidates, "Candidates per retriever");
  cmd->add_option("--rerank-depth", o->rerank_depth, "Fused candidates the reranker rescores");
  cmd->add_option("--max-per-doc", o->max_per_doc, "Passage level: at most this many passages per document (0: any)");
  cmd->add_option("--mmr", o->mmr, "Diversity: 1 ranks by score only, lower pushes near-duplicates down")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--reranker", flags->reranker, "Reranker model file (default: the built-in model)");
}

Status apply_pipeline_flags(const PipelineFlags& flags, Index* index, SearchOptions* o) {
  auto fusion = parse_fusion(flags.fusion);
  if (!fusion) return fusion.status();
  o->fusion = *fusion;
  if (!flags.reranker.empty()) {
    auto model = rank::Reranker::load(flags.reranker);
    if (!model) return model.status();
    index->set_reranker(std::move(model).value());
  }
  return Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"medsearch: passage retrieval over clinical guidelines and literature"};
  app.require_subcommand(1);
  // The version, and which kernels this CPU runs (MEDSEARCH_CPU_LEVEL lowers them).
  app.set_version_flag("--version", [] { return to_string(build_info()); });

  // build
  auto* build = app.add_subcommand("build", "Read, chunk and index one or more corpora");
  std::vector<std::string> corpora;
  std::string out_dir;
  bool skip_malformed = false;
  BuildOptions bopt;
  build->add_option("corpus", corpora,
                    "Corpus paths: a Markdown tree, a BEIR corpus.jsonl or its folder; NAME=PATH names the corpus")
      ->required();
  build->add_option("-o,--output", out_dir, "Index directory to write")->required();
  build->add_flag("--skip-malformed", skip_malformed, "Skip (and count) malformed documents instead of failing");
  build->add_option("--max-tokens", bopt.markdown_chunker.max_tokens, "Passage budget in words (Markdown)");
  build->add_option("--k1", bopt.bm25.k1, "BM25 k1");
  build->add_option("--b", bopt.bm25.b, "BM25 b");
  build->add_option("--heading-weight", bopt.bm25.heading_weight, "Weight of the heading/title field");
  bool no_embed = false;
  std::string model_dir, precision;
  const char* precision_help =
      "Encoder arithmetic: float32, bfloat16 (Intel AMX; ~2.6x faster) or auto (bfloat16 where the CPU has it); "
      "default $MEDSEARCH_ENCODER_PRECISION, else auto";
  build->add_flag("--no-embed", no_embed, "Index BM25 only: no passage embeddings");
  build->add_option("--model-dir", model_dir, "Encoder model directory (default: $MEDSEARCH_MODEL_DIR or the cache)");
  build->add_option("--precision", precision, precision_help);

  // search
  auto* search = app.add_subcommand("search", "Search an index and print ranked passages");
  std::string index_dir, query, level = "passage";
  uint32_t k = 10;
  std::vector<std::string> filter_specs;
  bool as_json = false;
  search->add_option("index", index_dir, "Index directory")->required();
  search->add_option("query", query, "Query text")->required();
  search->add_option("-k", k, "Number of results")->check(CLI::Range(1, 100000));
  search->add_option("--filter", filter_specs,
                     "key=value: audience=hp|patient, cancer_type=T, corpus=C, reviewed_after=YYYY-MM-DD, or any "
                     "metadata key (front matter, JSONL metadata): key=value, key>=N, key<=N (numbers or dates); "
                     "repeat for several");
  search->add_option("--level", level, "passage or doc (best passage per document)");
  search->add_flag("--json", as_json, "One JSON object per hit");
  PipelineFlags pflags;
  SearchOptions sopt;
  add_pipeline_options(search, &pflags, &sopt);
  search->add_option("--model-dir", model_dir, "Encoder model directory for dense modes");
  search->add_option("--precision", precision, precision_help);

  // run
  auto* run = app.add_subcommand("run", "Answer a query set and write a TREC run");
  std::string queries_file, run_file, tag = "medsearch";
  uint32_t run_k = 100;
  std::string run_level = "doc";
  run->add_option("index", index_dir, "Index directory")->required();
  run->add_option("--queries", queries_file, "BEIR queries.jsonl")->required();
  run->add_option("--output", run_file, "Run file to write (TREC format)")->required();
  run->add_option("--k", run_k, "Hits per query")->check(CLI::Range(1, 100000));
  run->add_option("--level", run_level, "doc (document ids) or passage (passage ids, plus RUN.jsonl)");
  run->add_option("--tag", tag, "Run tag");
  run->add_option("--filter", filter_specs, "As for search");
  add_pipeline_options(run, &pflags, &sopt);
  run->add_option("--model-dir", model_dir, "Encoder model directory for dense modes");
  run->add_option("--precision", precision, precision_help);

  // eval
  auto* ev = app.add_subcommand("eval", "Score a TREC run against BEIR qrels");
  std::string qrels_file, eval_queries;
  ev->add_option("--qrels", qrels_file, "BEIR qrels TSV")->required();
  ev->add_option("--run", run_file, "TREC run file")->required();
  ev->add_option("--queries", eval_queries, "Evaluate only the queries in this queries.jsonl");

  // bench: the suite is Python (it drives the peers); this runs it.
  auto* bench = app.add_subcommand("bench", "Run the benchmark suite and write a report folder (bench/suite.py)");
  bool quick = false;
  std::string bench_out;
  bench->add_flag("--quick", quick, "A few minutes instead of the whole picture");
  bench->add_option("--output", bench_out, "Report folder")->required();
  bench->allow_extras();  // --data, --build, --steps: passed to the suite

  CLI11_PARSE(app, argc, argv);

  if (*bench) {
    const fs::path root = MEDSEARCH_SOURCE_DIR;
    const fs::path venv = root / ".venv" / "bin" / "python";
    const std::string python = fs::exists(venv) ? venv.string() : "python3";
    std::vector<std::string> args = {python, (root / "bench" / "suite.py").string(), "--output", bench_out};
    if (quick) args.push_back("--quick");
    for (const auto& extra : bench->remaining()) args.push_back(extra);
    std::vector<char*> argv_exec;
    for (auto& a : args) argv_exec.push_back(a.data());
    argv_exec.push_back(nullptr);
    execvp(argv_exec[0], argv_exec.data());
    return fail(Status::io_error("cannot run " + python + ": " + std::strerror(errno)));
  }

  if (*build) {
    if (Status st = validate(bopt); !st) return fail(st);  // before reading the corpora
    std::vector<io::Document> docs;
    io::ReadOptions ropt{.skip_malformed = skip_malformed};
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& text : corpora) {
      const io::CorpusSpec spec = io::parse_corpus_spec(text);
      io::ReadReport report;
      auto read = io::read_corpus(spec.path, spec.name, ropt, &report);
      if (!read) return fail(read.status());
      std::fprintf(stderr, "read %zu documents from %s", report.documents, spec.path.c_str());
      if (report.skipped) std::fprintf(stderr, " (skipped %zu malformed)", report.skipped);
      std::fprintf(stderr, "\n");
      for (const auto& m : report.messages) std::fprintf(stderr, "  skipped: %s\n", m.c_str());
      for (auto& d : *read) docs.push_back(std::move(d));
    }
    std::shared_ptr<const embed::Embedder> encoder;
    if (!no_embed) {
      auto loaded = load_encoder(model_dir, precision);
      if (!loaded) {
        return fail(Status(loaded.status().code(), loaded.status().message() + " (or build with --no-embed)"));
      }
      encoder = std::move(loaded).value();
    }
    ProgressBar bar;
    auto index = Index::build(std::move(docs), bopt, std::ref(bar), encoder);
    if (!index) return fail(index.status());
    const auto t1 = std::chrono::steady_clock::now();
    if (Status st = (*index)->save(out_dir); !st) return fail(st);
    const IndexStats s = (*index)->stats();
    std::fprintf(stderr, "indexed %zu documents, %zu passages, %zu terms in %.2f s (%.1f MiB in memory%s%s) -> %s\n",
                 s.documents, s.passages, s.terms, std::chrono::duration<double>(t1 - t0).count(),
                 s.memory_bytes / 1048576.0, s.dense_index.empty() ? "" : ", dense: ", s.dense_index.c_str(),
                 out_dir.c_str());
    return 0;
  }

  if (Status st = parse_filters(filter_specs, &sopt.filters); !st) return fail(st);

  if (*search) {
    auto lv = parse_level(level);
    if (!lv) return fail(lv.status());
    sopt.k = k;
    sopt.level = *lv;
    auto index = open_index(index_dir, pflags.mode, model_dir, precision, &sopt.mode);
    if (!index) return fail(index.status());
    if (Status st = apply_pipeline_flags(pflags, index->get(), &sopt); !st) return fail(st);
    const auto t0 = std::chrono::steady_clock::now();
    auto response = (*index)->search(query, sopt);
    const auto t1 = std::chrono::steady_clock::now();
    if (!response) return fail(response.status());
    const Snapshot& snapshot = *response->snapshot;
    const std::vector<Hit>& hits = response->hits;
    const std::vector<Passage> passages = response->passages();
    const bool reranked = sopt.mode == SearchMode::kRerank;
    if (as_json) {
      // One object per hit; in rerank mode each also carries the response's coverage.
      for (size_t i = 0; i < hits.size(); ++i) {
        std::string extra = hits[i].has_features && reranked ? features_json(snapshot, hits[i]) : "";
        if (reranked) {
          char buf[64];
          std::snprintf(buf, sizeof(buf), "%.4f", response->coverage);
          extra += std::string(extra.empty() ? "" : ", ") + "\"coverage\": " + buf;
        }
        std::printf("%s\n", hit_json(hits[i], passages[i], i + 1, extra).c_str());
      }
      return 0;
    }
    std::printf("%zu results for \"%s\" (%.2f ms)\n", hits.size(), query.c_str(),
                std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (reranked && !hits.empty()) {
      // Thresholds on the calibrated probability (bench/results/quality/: on the hand-written
      // development questions, below 0.25 almost none is answered, above 0.5 most are).
      const float c = response->coverage;
      std::printf("coverage: %.0f%% estimated probability that the top %d passages answer the question\n",
                  100.0 * c, rank::kCoverageTop);
      if (c < 0.25f) {
        std::printf("The corpus probably does not answer this question: the passages below are only the closest it has.\n");
      } else if (c < 0.5f) {
        std::printf("The corpus may not answer this question: check the passages below before relying on them.\n");
      }
    }
    std::printf("\n");
    for (size_t i = 0; i < hits.size(); ++i) {
      const Hit& hit = hits[i];
      const Passage& h = passages[i];
      std::printf("%zu. %s\n", i + 1, join_path(h.heading_path).c_str());
      std::printf("   %s%s%s%s\n", h.title.c_str(), h.audience.empty() ? "" : (" [" + h.audience + "]").c_str(),
                  h.last_reviewed.empty() ? "" : (", reviewed " + h.last_reviewed).c_str(),
                  h.corpus == "nci-pdq" ? " (source: NCI PDQ)" : (" (" + h.corpus + ")").c_str());
      if (!h.url.empty()) std::printf("   %s\n", h.url.c_str());
      if (sopt.mode == SearchMode::kBm25) {
        std::printf("   score %.3f = body %.3f + heading %.3f x %.2f   [%s]\n", hit.score, hit.body_score,
                    hit.heading_score, snapshot.options().bm25.heading_weight, h.passage_id.c_str());
      } else {
        const char* kind = sopt.mode == SearchMode::kDense ? "cosine"
                           : reranked                        ? "reranker"
                           : sopt.fusion == Fusion::kRrf     ? "reciprocal rank fusion"
                                                             : "convex fusion";
        std::printf("   score %.4f (%s)   bm25 body %.3f, heading %.3f; cosine %.3f   [%s]\n", hit.score, kind,
                    hit.body_score, hit.heading_score, hit.dense_score, h.passage_id.c_str());
        if (reranked && hit.has_features) {
          std::printf("   = base %.3f + %s ...\n", snapshot.reranker().bias(), top_contributions(snapshot, hit, 4).c_str());
        }
      }
      std::printf("   %s\n\n", snippet(snapshot, h, query, 320).c_str());
    }
    return 0;
  }

  if (*run) {
    auto lv = parse_level(run_level);
    if (!lv) return fail(lv.status());
    sopt.k = run_k;
    sopt.level = *lv;
    auto index = open_index(index_dir, pflags.mode, model_dir, precision, &sopt.mode);
    if (!index) return fail(index.status());
    if (Status st = apply_pipeline_flags(pflags, index->get(), &sopt); !st) return fail(st);
    sopt.explain = false;
    auto queries = eval::read_queries(queries_file);
    if (!queries) return fail(queries.status());
    std::vector<std::string> texts;
    for (const auto& q : *queries) texts.push_back(q.text);
    const auto t0 = std::chrono::steady_clock::now();
    auto results = (*index)->search_batch(texts, sopt);
    const auto t1 = std::chrono::steady_clock::now();
    if (!results) return fail(results.status());
    // Written next to the target and renamed, so a failed run leaves no half file.
    const std::string tmp = run_file + ".tmp";
    std::ofstream out(tmp);
    std::ofstream jsonl;
    if (*lv == ResultLevel::kPassage) jsonl.open(run_file + ".jsonl.tmp");
    for (size_t qi = 0; qi < queries->size(); ++qi) {
      const auto& qid = (*queries)[qi].id;
      const SearchResponse& response = (*results)[qi];
      for (size_t r = 0; r < response.hits.size(); ++r) {
        const float score = response.hits[r].score;
        const Passage h = response.passage(r);
        const std::string& id = *lv == ResultLevel::kDocument ? h.doc_id : h.passage_id;
        out << qid << " Q0 " << id << ' ' << (r + 1) << ' ' << score << ' ' << tag << '\n';
        if (jsonl.is_open()) {
          jsonl << "{\"qid\": " << json_string(qid) << ", \"rank\": " << (r + 1) << ", \"score\": " << score
                << ", \"doc_id\": " << json_string(h.doc_id) << ", \"passage_id\": " << json_string(h.passage_id)
                << ", \"heading_path\": " << json_strings(h.heading_path) << "}\n";
        }
      }
    }
    out.close();
    if (!out) return fail(Status::io_error("cannot write " + tmp));
    fs::rename(tmp, run_file);
    if (jsonl.is_open()) {
      jsonl.close();
      if (!jsonl) return fail(Status::io_error("cannot write " + run_file + ".jsonl.tmp"));
      fs::rename(run_file + ".jsonl.tmp", run_file + ".jsonl");
    }
    std::fprintf(stderr, "%zu queries in %.3f s -> %s\n", queries->size(),
                 std::chrono::duration<double>(t1 - t0).count(), run_file.c_str());
    return 0;
  }

  if (*ev) {
    auto qrels = eval::read_qrels(qrels_file);
    if (!qrels) return fail(qrels.status());
    std::ifstream in(run_file);
    if (!in) return fail(Status::not_found("cannot open run file " + run_file));
    eval::Run runs;
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      std::istringstream fields(line);
      std::string qid, q0, doc, rank, score;
      if (!(fields >> qid >> q0 >> doc >> rank >> score)) {
        return fail(Status::corrupt(run_file + ":" + std::to_string(line_no) + ": not a TREC run line"));
      }
      runs[qid].push_back(doc);
    }
    std::vector<std::string> only;
    if (!eval_queries.empty()) {
      auto qs = eval::read_queries(eval_queries);
      if (!qs) return fail(qs.status());
      for (const auto& q : *qs) only.push_back(q.id);
    }
    const auto m = eval::evaluate(runs, *qrels, only);
    std::printf("queries\t%zu\nnDCG@10\t%.4f\nRecall@100\t%.4f\nMRR@10\t%.4f\n", m.queries, m.ndcg_at_10,
                m.recall_at_100, m.mrr_at_10);
    return 0;
  }
  return 0;
}
