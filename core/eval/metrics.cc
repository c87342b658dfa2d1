#include <medsearch/eval.h>

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>

#include "core/internal/binary_io.h"

namespace medsearch::eval {
namespace {

// Takes the first line off `rest` (without its '\n').
std::string_view next_line(std::string_view& rest) {
  const size_t nl = rest.find('\n');
  const std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

}  // namespace

Result<std::vector<Query>> read_queries(const std::filesystem::path& file) {
  auto data = internal::read_file(file);
  if (!data) return data.status();
  std::vector<Query> queries;
  simdjson::dom::parser parser;
  std::string_view rest = *data;
  size_t line_no = 0;
  while (!rest.empty()) {
    ++line_no;
    std::string_view line = next_line(rest);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = file.string() + ":" + std::to_string(line_no) + ": ";
    simdjson::dom::element obj;
    if (parser.parse(line.data(), line.size()).get(obj)) return Status::corrupt(where + "malformed JSON");
    Query q;
    std::string_view sv;
    int64_t num = 0;
    if (!obj["_id"].get(sv)) {
      q.id = std::string(sv);
    } else if (!obj["_id"].get(num)) {
      q.id = std::to_string(num);
    } else {
      return Status::corrupt(where + "missing string \"_id\"");
    }
    if (obj["text"].get(sv)) return Status::corrupt(where + "missing string \"text\"");
    q.text = std::string(sv);
    queries.push_back(std::move(q));
  }
  return queries;
}

Result<Qrels> read_qrels(const std::filesystem::path& file) {
  auto data = internal::read_file(file);
  if (!data) return data.status();
  Qrels qrels;
  std::string_view rest = *data;
  size_t line_no = 0;
  while (!rest.empty()) {
    ++line_no;
    std::string_view line = next_line(rest);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t t1 = line.find('\t');
    const size_t t2 = t1 == std::string_view::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string_view::npos) {
      return Status::corrupt(file.string() + ":" + std::to_string(line_no) + ": expected query-id<TAB>corpus-id<TAB>score");
    }
    std::string_view score_text = line.substr(t2 + 1);
    int score = 0;
    auto [ptr, ec] = std::from_chars(score_text.data(), score_text.data() + score_text.size(), score);
    if (ec != std::errc() || ptr != score_text.data() + score_text.size()) {
      if (line_no == 1) continue;  // the header line
      return Status::corrupt(file.string() + ":" + std::to_string(line_no) + ": score is not an integer");
    }
    qrels[std::string(line.substr(0, t1))][std::string(line.substr(t1 + 1, t2 - t1 - 1))] = score;
  }
  return qrels;
}

double ndcg_at(const std::vector<std::string>& ranking, const std::map<std::string, int>& judged, size_t k) {
  double dcg = 0;
  std::set<std::string_view> seen;
  for (size_t i = 0; i < std::min(k, ranking.size()); ++i) {
    if (!seen.insert(ranking[i]).second) continue;  // a document counts once
    auto it = judged.find(ranking[i]);
    if (it != judged.end() && it->second > 0) dcg += it->second / std::log2(i + 2.0);
  }
  std::vector<int> grades;
  for (const auto& [doc, g] : judged) {
    if (g > 0) grades.push_back(g);
  }
  std::sort(grades.rbegin(), grades.rend());
  double idcg = 0;
  for (size_t i = 0; i < std::min(k, grades.size()); ++i) idcg += grades[i] / std::log2(i + 2.0);
  return idcg > 0 ? dcg / idcg : 0;
}

double recall_at(const std::vector<std::string>& ranking, const std::map<std::string, int>& judged, size_t k) {
  size_t relevant = 0;
  for (const auto& [doc, g] : judged) relevant += g > 0;
  if (relevant == 0) return 0;
  std::set<std::string_view> found;
  for (size_t i = 0; i < std::min(k, ranking.size()); ++i) {
    auto it = judged.find(ranking[i]);
    if (it != judged.end() && it->second > 0) found.insert(ranking[i]);
  }
  return static_cast<double>(found.size()) / relevant;
}

double mrr_at(const std::vector<std::string>& ranking, const std::map<std::string, int>& judged, size_t k) {
  for (size_t i = 0; i < std::min(k, ranking.size()); ++i) {
    auto it = judged.find(ranking[i]);
    if (it != judged.end() && it->second > 0) return 1.0 / (i + 1);
  }
  return 0;
}

Metrics evaluate(const Run& run, const Qrels& qrels, const std::vector<std::string>& only) {
  Metrics m;
  static const std::vector<std::string> kEmpty;
  auto add = [&](const std::string& qid, const std::map<std::string, int>& judged) {
    if (std::none_of(judged.begin(), judged.end(), [](const auto& kv) { return kv.second > 0; })) return;
    auto it = run.find(qid);
    const auto& ranking = it == run.end() ? kEmpty : it->second;
    m.ndcg_at_10 += ndcg_at(ranking, judged, 10);
    m.recall_at_100 += recall_at(ranking, judged, 100);
    m.mrr_at_10 += mrr_at(ranking, judged, 10);
    ++m.queries;
  };
  if (only.empty()) {
    for (const auto& [qid, judged] : qrels) add(qid, judged);
  } else {
    for (const auto& qid : only) {
      auto it = qrels.find(qid);
      if (it != qrels.end()) add(qid, it->second);
    }
  }
  if (m.queries) {
    m.ndcg_at_10 /= m.queries;
    m.recall_at_100 /= m.queries;
    m.mrr_at_10 /= m.queries;
  }
  return m;
}

}  // namespace medsearch::eval
