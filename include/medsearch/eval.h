// metrics.h: BEIR-style evaluation: queries, qrels, and nDCG@k / Recall@k / MRR@k.
//
// nDCG uses graded gains (rel) with log2(rank + 1) discounts, as in trec_eval
// and BEIR's pytrec_eval; the ideal ranking is the judged documents sorted by
// grade. Queries without any relevant judgement are skipped (as BEIR does);
// queries with judgements but no results count as 0.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <medsearch/status.h>

namespace medsearch::eval {

struct Query {
  std::string id;
  std::string text;
};

// query id -> (doc id -> grade), grade > 0 relevant.
using Qrels = std::map<std::string, std::map<std::string, int>>;
// query id -> ranked doc ids, best first.
using Run = std::map<std::string, std::vector<std::string>>;

// BEIR queries.jsonl: {"_id", "text"} per line. Errors name file and line.
Result<std::vector<Query>> read_queries(const std::filesystem::path& file);
// BEIR qrels TSV with a header line: query-id, corpus-id, score.
Result<Qrels> read_qrels(const std::filesystem::path& file);

struct Metrics {
  double ndcg_at_10 = 0;
  double recall_at_100 = 0;
  double mrr_at_10 = 0;
  size_t queries = 0;  // queries evaluated (those with a relevant judgement)
};

double ndcg_at(const std::vector<std::string>& ranking, const std::map<std::string, int>& judged, size_t k);
double recall_at(const std::vector<std::string>& ranking, const std::map<std::string, int>& judged, size_t k);
double mrr_at(const std::vector<std::string>& ranking, const std::map<std::string, int>& judged, size_t k);

// Averages over the queries of `qrels` that have a relevant document; when
// `only` is non-empty, over those query ids only.
Metrics evaluate(const Run& run, const Qrels& qrels, const std::vector<std::string>& only = {});

}  // namespace medsearch::eval
