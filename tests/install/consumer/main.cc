// Links the installed static library through its public headers only
// (<medsearch/...>): builds a tiny index and searches it, and runs a vector
// index and the evaluation metrics. Every public header is included, so each
// compiles outside the source tree.
#include <medsearch/corpus.h>
#include <medsearch/document.h>
#include <medsearch/embedder.h>
#include <medsearch/encoder.h>
#include <medsearch/eval.h>
#include <medsearch/index.h>
#include <medsearch/options.h>
#include <medsearch/precomputed.h>
#include <medsearch/reranker.h>
#include <medsearch/shard.h>
#include <medsearch/status.h>
#include <medsearch/tokenizer.h>
#include <medsearch/vector_index.h>
#include <medsearch/vector_types.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

int main() {
  medsearch::io::Document d;
  d.doc_id = "a";
  d.corpus = "demo";
  d.title = "Mesothelioma";
  d.body = "Nivolumab is an option for recurrent malignant mesothelioma.";
  std::vector<medsearch::io::Document> docs{d};
  auto index = medsearch::Index::build(std::move(docs), {});
  if (!index) return 1;
  auto response = (*index)->search("recurrent mesothelioma", {});
  if (!response || response->hits.size() != 1 || response->passage(0).doc_id != "a") return 2;

  namespace vector = medsearch::vector;
  vector::IndexOptions vo;
  vo.dim = 2;
  vo.kind = vector::IndexKind::kFlat;
  auto flat = vector::make_vector_index(vo);
  const std::vector<float> rows = {1, 0, 0, 1};
  if (!flat || !(*flat)->add(vector::MatrixView{rows.data(), 2, 2}, {}).is_ok()) return 3;
  const std::vector<float> query = {0.1f, 0.9f};
  std::vector<vector::DocId> ids(1);
  std::vector<float> scores(1);
  vector::SearchParams params;
  params.k = 1;
  if (!(*flat)->search(vector::MatrixView{query.data(), 1, 2}, params, ids, scores).is_ok() || ids[0] != 1) return 4;

  // The same index as a one-shard collection, searched through a coordinator.
  auto stats = std::make_shared<const medsearch::CollectionStats>(medsearch::CollectionStats::of(*(*index)->snapshot()));
  auto shard = medsearch::ShardSearcher::create(0, (*index)->snapshot(), stats, {0});
  medsearch::Coordinator coordinator(stats, nullptr);
  auto plan = coordinator.plan("recurrent mesothelioma", {});
  if (!shard || !plan) return 5;
  auto answer = (*shard)->answer(*plan);
  if (!answer) return 6;
  const std::string answers[] = {*answer};
  auto merged = coordinator.merge(*plan, answers);
  if (!merged || merged->hits.size() != 1 || merged->hits[0].hit.score != response->hits[0].score) return 7;

  std::printf("consumer ok: %s %.3f, nearest row %u, sharded %.3f\n", response->passage(0).passage_id.c_str(),
              response->hits[0].score, ids[0], merged->hits[0].hit.score);
  return 0;
}
