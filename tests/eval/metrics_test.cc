#include <medsearch/eval.h>

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

namespace medsearch::eval {
namespace {

TEST(Metrics, NdcgRecallMrrByHand) {
  const std::map<std::string, int> judged{{"a", 1}, {"b", 2}, {"z", 0}};
  // Ranking: x, b, a. DCG = 2/log2(3) + 1/log2(4); IDCG = 2/log2(2) + 1/log2(3).
  const std::vector<std::string> ranking{"x", "b", "a"};
  const double dcg = 2 / std::log2(3.0) + 1 / std::log2(4.0);
  const double idcg = 2 / std::log2(2.0) + 1 / std::log2(3.0);
  EXPECT_NEAR(ndcg_at(ranking, judged, 10), dcg / idcg, 1e-12);
  EXPECT_NEAR(ndcg_at(ranking, judged, 2), (2 / std::log2(3.0)) / idcg, 1e-12);
  EXPECT_DOUBLE_EQ(recall_at(ranking, judged, 2), 0.5);
  EXPECT_DOUBLE_EQ(recall_at(ranking, judged, 100), 1.0);
  EXPECT_DOUBLE_EQ(mrr_at(ranking, judged, 10), 0.5);
  EXPECT_DOUBLE_EQ(mrr_at(ranking, judged, 1), 0.0);
}

TEST(Metrics, EvaluateSkipsUnjudgedAndCountsMissingRunsAsZero) {
  Qrels qrels{{"q1", {{"d1", 1}}}, {"q2", {{"d2", 1}}}, {"q3", {{"d3", 0}}}};
  eval::Run run{{"q1", {"d1"}}};
  const auto m = evaluate(run, qrels);
  EXPECT_EQ(m.queries, 2u);
  EXPECT_DOUBLE_EQ(m.ndcg_at_10, 0.5);
  EXPECT_DOUBLE_EQ(evaluate(run, qrels, {"q1"}).ndcg_at_10, 1.0);
}

TEST(Metrics, ReadersReportFileAndLine) {
  const auto dir = std::filesystem::temp_directory_path() / "medsearch_metrics_test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "q.jsonl") << "{\"_id\": \"1\", \"text\": \"a\"}\n{\"_id\": 2, \"text\": \"b\"}\n{bad\n";
    std::ofstream(dir / "qrels.tsv") << "query-id\tcorpus-id\tscore\n1\td\t1\n2 d\n";
  }
  auto q = read_queries(dir / "q.jsonl");
  ASSERT_FALSE(q.is_ok());
  EXPECT_NE(q.status().message().find("q.jsonl:3"), std::string::npos) << q.status().message();
  auto r = read_qrels(dir / "qrels.tsv");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("qrels.tsv:3"), std::string::npos) << r.status().message();
  std::ofstream(dir / "q.jsonl") << "{\"_id\": \"1\", \"text\": \"a\"}\n{\"_id\": 2, \"text\": \"b\"}\n";
  q = read_queries(dir / "q.jsonl");
  ASSERT_TRUE(q.is_ok());
  ASSERT_EQ(q->size(), 2u);
  EXPECT_EQ((*q)[1].id, "2");
  EXPECT_EQ(read_queries(dir / "missing.jsonl").status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace medsearch::eval
