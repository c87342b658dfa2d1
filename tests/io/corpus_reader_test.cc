// Tests for core/io/corpus_reader.h: front matter, Markdown trees, BEIR JSONL,
// dispatch and error reporting.
#include <medsearch/corpus.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace medsearch::io {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;

TEST(CorpusSpecTest, NameEqualsPathOrAPath) {
  EXPECT_EQ(parse_corpus_spec("../shared/data/scifact").name, "");
  EXPECT_EQ(parse_corpus_spec("../shared/data/scifact").path, fs::path("../shared/data/scifact"));
  const CorpusSpec named = parse_corpus_spec("pdq=../shared/data/nci-pdq");
  EXPECT_EQ(named.name, "pdq");
  EXPECT_EQ(named.path, fs::path("../shared/data/nci-pdq"));
  EXPECT_EQ(parse_corpus_spec("a=b=c").name, "a");
  EXPECT_EQ(parse_corpus_spec("a=b=c").path, fs::path("b=c"));
  // A path that exists as written is a path, even with '=' in it.
  const fs::path odd = fs::temp_directory_path() / ("medsearch_spec_x=y_" + std::to_string(::getpid()));
  fs::create_directories(odd);
  EXPECT_EQ(parse_corpus_spec(odd.string()).name, "");
  EXPECT_EQ(parse_corpus_spec(odd.string()).path, odd);
  fs::remove_all(odd);
}

// A fresh directory under the system temp dir, removed with its content.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("medsearch_reader_test_" + std::to_string(rd()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

  // Writes `content` to path()/rel, creating folders.
  fs::path write(const std::string& rel, const std::string& content) const {
    const fs::path p = path_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << content;
    return p;
  }

 private:
  fs::path path_;
};

constexpr char kMesoPage[] =
    "---\n"
    "audienceLevel: patient\n"
    "cancerTypes:\n"
    "- mesothelioma\n"
    "- lung\n"
    "lastReviewed: '2025-12-30'\n"
    "tags:\n"
    "- pdq\n"
    "- treatment\n"
    "title: Malignant Mesothelioma Treatment (PDQ®) - NCI\n"
    "url: https://www.cancer.gov/types/mesothelioma/hp/mesothelioma-treatment-pdq\n"
    "version: v1\n"
    "---\n"
    "\n"
    "# Malignant Mesothelioma Treatment (PDQ®) - NCI\n"
    "\n"
    "Body text.\n";

// --- Front matter -------------------------------------------------------------

TEST(FrontMatterTest, ParsesFieldsAndIgnoresAudienceLevel) {
  Document doc;
  ASSERT_TRUE(parse_markdown_document(kMesoPage, &doc).is_ok());
  EXPECT_EQ(doc.title, "Malignant Mesothelioma Treatment (PDQ®) - NCI");
  EXPECT_EQ(doc.url, "https://www.cancer.gov/types/mesothelioma/hp/mesothelioma-treatment-pdq");
  EXPECT_EQ(doc.last_reviewed, "2025-12-30");
  EXPECT_EQ(doc.tags, Strings({"pdq", "treatment"}));
  EXPECT_EQ(doc.audience, "hp");  // the URL wins over audienceLevel: patient
  EXPECT_EQ(doc.cancer_type, "mesothelioma");
  EXPECT_EQ(doc.format, DocFormat::kMarkdown);
  EXPECT_EQ(doc.body, "\n# Malignant Mesothelioma Treatment (PDQ®) - NCI\n\nBody text.\n");
}

// Every front matter entry is a metadata field (lists as lists, scalars as
// one value, empty ones left out), in the order written.
TEST(FrontMatterTest, EveryEntryIsAMetadataField) {
  Document doc;
  ASSERT_TRUE(parse_markdown_document(kMesoPage, &doc).is_ok());
  const std::vector<MetaField> want = {
      {"audienceLevel", {"patient"}},
      {"cancerTypes", {"mesothelioma", "lung"}},
      {"lastReviewed", {"2025-12-30"}},
      {"tags", {"pdq", "treatment"}},
      {"title", {"Malignant Mesothelioma Treatment (PDQ®) - NCI"}},
      {"url", {"https://www.cancer.gov/types/mesothelioma/hp/mesothelioma-treatment-pdq"}},
      {"version", {"v1"}},
  };
  EXPECT_EQ(doc.metadata, want);
  Document quoted;
  ASSERT_TRUE(parse_markdown_document("---\nempty:\nyear: '2019'\nflow: [a, 'b c']\n---\nx\n", &quoted).is_ok());
  EXPECT_EQ(quoted.metadata, (std::vector<MetaField>{{"year", {"2019"}}, {"flow", {"a", "b c"}}}));
}

TEST(FrontMatterTest, QuotesFoldedLinesFlowListsAndComments) {
  const std::string text =
      "---\r\n"
      "# a comment\r\n"
      "title: 'Expanding the Playing Field: It''s Lung,\r\n"
      "  Other Cancers - NCI'\r\n"
      "url: \"https://www.cancer.gov/types/lung/patient/x\\u00e9\"\r\n"
      "lastReviewed: 2024-02-29T10:00:00Z\r\n"
      "tags: [cancer-type, 'dual word', \"q\"]\r\n"
      "citation: NCI, 2025 # trailing comment\r\n"
      "empty:\r\n"
      "nested:\r\n"
      "  - indented item\r\n"
      "...\r\n"
      "Line one\r\nLine two\r\n";
  Document doc;
  const Status st = parse_markdown_document(text, &doc);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(doc.title, "Expanding the Playing Field: It's Lung, Other Cancers - NCI");
  EXPECT_EQ(doc.url, "https://www.cancer.gov/types/lung/patient/x\u00e9");
  EXPECT_EQ(doc.last_reviewed, "2024-02-29");
  EXPECT_EQ(doc.tags, Strings({"cancer-type", "dual word", "q"}));
  EXPECT_EQ(doc.audience, "patient");
  EXPECT_EQ(doc.cancer_type, "lung");
  EXPECT_EQ(doc.body, "Line one\nLine two\n");  // CRLF made LF
}

// A page whose URL names no audience (the NCI side-effect and coping pages)
// takes the front matter's audienceLevel; a URL's "hp" or "patient" wins over it.
TEST(FrontMatterTest, AudienceFromFrontMatterWhenTheUrlNamesNone) {
  const struct {
    const char* front;
    const char* audience;
  } cases[] = {
      {"url: https://www.cancer.gov/about-cancer/treatment/side-effects/memory\naudienceLevel: patient\n", "patient"},
      {"url: https://www.cancer.gov/about-cancer/coping\naudienceLevel: Health Professional\n", "hp"},
      {"url: https://www.cancer.gov/about-cancer/coping\naudienceLevel: health_professionals\n", "hp"},
      {"url: https://www.cancer.gov/about-cancer/coping\naudienceLevel: Caregiver\n", ""},  // not a filter value
      {"url: https://www.cancer.gov/about-cancer/coping\naudienceLevel: Patients\n", "patient"},
      {"url: https://www.cancer.gov/about-cancer/coping\naudienceLevel: pitaent\n", ""},  // found by fuzz_markdown
      {"url: https://www.cancer.gov/types/lung/hp/x\naudienceLevel: patient\n", "hp"},
      {"url: https://www.cancer.gov/types/lung/patient/x\naudienceLevel: hp\n", "patient"},
      {"url: https://www.cancer.gov/about-cancer/coping\n", ""},
      {"audienceLevel: patient\n", "patient"},
  };
  for (const auto& c : cases) {
    Document doc;
    ASSERT_TRUE(parse_markdown_document(std::string("---\n") + c.front + "---\nText.\n", &doc).is_ok()) << c.front;
    EXPECT_EQ(doc.audience, c.audience) << c.front;
  }
}

TEST(FrontMatterTest, MissingFrontMatterTakesTitleFromFirstHeading) {
  Document doc;
  ASSERT_TRUE(parse_markdown_document("Intro line.\n\n## Not this\n\n# The Title\n\nText.\n", &doc).is_ok());
  EXPECT_EQ(doc.title, "The Title");
  EXPECT_EQ(doc.url, "");
  EXPECT_EQ(doc.audience, "");
  EXPECT_TRUE(doc.tags.empty());
  EXPECT_EQ(doc.body, "Intro line.\n\n## Not this\n\n# The Title\n\nText.\n");

  // An empty front matter title falls back the same way.
  Document doc2;
  ASSERT_TRUE(parse_markdown_document("---\ntitle: ''\n---\n# Heading Title\n", &doc2).is_ok());
  EXPECT_EQ(doc2.title, "Heading Title");
}

struct BadFrontMatter {
  const char* text;
  const char* line;    // "line N:" expected in the message
  const char* reason;  // a substring of the message
};

TEST(FrontMatterTest, MalformedFrontMatterNamesTheLine) {
  const BadFrontMatter cases[] = {
      {"---\ntitle: x\nurl: y\n", "line 1:", "unterminated front matter"},
      {"---\ntitle: x\nurl: y\nthis is not yaml\n---\n", "line 4:", "expected 'key: value'"},
      {"---\ntitle: x\n- stray\n---\n", "line 3:", "list item after a single value"},
      {"---\n- stray\n---\n", "line 2:", "list item without a 'key:'"},
      {"---\ntitle: x\ntitle: y\n---\n", "line 3:", "duplicate key 'title'"},
      {"---\ntitle: 'unterminated\n---\n", "line 2:", "unterminated single-quoted"},
      {"---\ntitle: \"bad \\q escape\"\n---\n", "line 2:", "unsupported escape"},
      {"---\nlastReviewed: '30/12/2025'\n---\n", "line 2:", "YYYY-MM-DD"},
      {"---\ntitle:\n- a\n- b\n---\n", "line 2:", "expected a single value"},
      {"---\ntags: pdq\n---\n", "line 2:", "tags: expected a list"},
      {"---\nkey with space: x\n---\n", "line 2:", "expected 'key: value'"},
      {"---\ntitle: |\n  block\n---\n", "line 2:", "unsupported YAML value"},
      {"---\n  indented: x\n---\n", "line 2:", "unexpected indented line"},
      {"---\ntitle: ok\n---\nfine\n\xff\xfe bad bytes\n", "line 5:", "invalid UTF-8"},
  };
  for (const BadFrontMatter& c : cases) {
    Document doc;
    const Status st = parse_markdown_document(c.text, &doc);
    ASSERT_FALSE(st.is_ok()) << c.text;
    EXPECT_EQ(st.code(), StatusCode::kCorrupt) << c.text;
    EXPECT_TRUE(st.message().starts_with(c.line)) << st.message() << " for\n" << c.text;
    EXPECT_NE(st.message().find(c.reason), std::string::npos) << st.message();
  }
}

TEST(FrontMatterTest, AudienceAndCancerTypeFromUrl) {
  struct Case {
    const char* url;
    const char* audience;
    const char* cancer_type;
  };
  const Case cases[] = {
      {"https://www.cancer.gov/types/mesothelioma/hp/mesothelioma-treatment-pdq", "hp", "mesothelioma"},
      {"https://www.cancer.gov/types/breast/patient/breast-treatment-pdq", "patient", "breast"},
      {"https://www.cancer.gov/about-cancer/treatment/cam/hp/cannabis-pdq", "hp", ""},
      {"https://www.cancer.gov/about-cancer/treatment/types/chemotherapy", "", ""},
      {"https://www.cancer.gov/types/skin", "", "skin"},
      {"/types/lung/research/pd-1?x=/hp/#patient", "", "lung"},
      {"https://www.cancer.gov/hpv/patients", "", ""},
      {"", "", ""},
  };
  for (const Case& c : cases) {
    std::string audience = "stale", cancer_type = "stale";
    derive_from_url(c.url, &audience, &cancer_type);
    EXPECT_EQ(audience, c.audience) << c.url;
    EXPECT_EQ(cancer_type, c.cancer_type) << c.url;
  }
}

// --- Markdown trees -------------------------------------------------------------

TEST(MarkdownTreeTest, SortedRelativeIdsAndMetadata) {
  TempDir dir;
  const fs::path root = dir.path() / "nci-mini";
  dir.write("nci-mini/pdq/b.md", kMesoPage);
  dir.write("nci-mini/pdq/a.md", "---\ntitle: A page\n---\nText A.\n");
  dir.write("nci-mini/coping/z.md", "No front matter and no heading.\n");
  dir.write("nci-mini/coping/notes.txt", "not Markdown");
  dir.write("nci-mini/top.md", "# Top Heading\n");
  ReadReport report;
  auto docs = read_markdown_tree(root, "mini", {}, &report);
  ASSERT_TRUE(docs.is_ok()) << docs.status().to_string();
  Strings ids;
  for (const Document& d : *docs) ids.push_back(d.doc_id);
  EXPECT_EQ(ids, Strings({"coping/z.md", "pdq/a.md", "pdq/b.md", "top.md"}));
  EXPECT_EQ(report.documents, 4u);
  EXPECT_EQ(report.skipped, 0u);
  const Document& z = (*docs)[0];
  EXPECT_EQ(z.title, "z");  // file name when there is no title nor heading
  EXPECT_EQ(z.corpus, "mini");
  EXPECT_EQ(z.format, DocFormat::kMarkdown);
  EXPECT_EQ((*docs)[1].title, "A page");
  EXPECT_EQ((*docs)[2].audience, "hp");
  EXPECT_EQ((*docs)[3].title, "Top Heading");
}

TEST(MarkdownTreeTest, MalformedFileNamesFileAndLine) {
  TempDir dir;
  dir.write("c/pdq/good.md", "---\ntitle: Good\n---\nFine.\n");
  dir.write("c/pdq/x.md", "---\ntitle: X\nurl: /types/x/hp/y\ntags:\n- a\n- b\nnot a key line\n---\nBody\n");
  dir.write("c/pdq/y.md", "---\ntitle: Y\n");
  auto docs = read_markdown_tree(dir.path() / "c", "c", {}, nullptr);
  ASSERT_FALSE(docs.is_ok());
  EXPECT_EQ(docs.status().code(), StatusCode::kCorrupt);
  // The first bad file in path order is reported.
  EXPECT_TRUE(docs.status().message().starts_with("pdq/x.md:7: ")) << docs.status().message();

  ReadReport report;
  auto skipped = read_markdown_tree(dir.path() / "c", "c", {.skip_malformed = true}, &report);
  ASSERT_TRUE(skipped.is_ok()) << skipped.status().to_string();
  ASSERT_EQ(skipped->size(), 1u);
  EXPECT_EQ((*skipped)[0].doc_id, "pdq/good.md");
  EXPECT_EQ(report.documents, 1u);
  EXPECT_EQ(report.skipped, 2u);
  ASSERT_EQ(report.messages.size(), 2u);
  EXPECT_TRUE(report.messages[0].starts_with("pdq/x.md:7: ")) << report.messages[0];
  EXPECT_TRUE(report.messages[1].starts_with("pdq/y.md:1: unterminated")) << report.messages[1];
}

TEST(MarkdownTreeTest, InvalidUtf8) {
  TempDir dir;
  dir.write("c/ok.md", "# Fine\n");
  dir.write("c/bad.md", "# Title\n\nline two\ncaf\xe9 latin-1\n");  // 0xE9 alone
  auto docs = read_markdown_tree(dir.path() / "c", "c", {}, nullptr);
  ASSERT_FALSE(docs.is_ok());
  EXPECT_EQ(docs.status().message(), "bad.md:4: invalid UTF-8");
  ReadReport report;
  auto skipped = read_markdown_tree(dir.path() / "c", "c", {.skip_malformed = true}, &report);
  ASSERT_TRUE(skipped.is_ok());
  EXPECT_EQ(skipped->size(), 1u);
  EXPECT_EQ(report.skipped, 1u);
}

TEST(MarkdownTreeTest, EmptyOrMissingTree) {
  TempDir dir;
  auto empty = read_markdown_tree(dir.path(), "c", {}, nullptr);
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  auto missing = read_markdown_tree(dir.path() / "nope", "c", {}, nullptr);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// --- BEIR JSONL -----------------------------------------------------------------

TEST(BeirTest, ParsesDocuments) {
  TempDir dir;
  const fs::path file = dir.write(
      "scifact/corpus.jsonl",
      "{\"_id\": \"4983\", \"title\": \"Microstructural development\", \"text\": \"Alterations of the "
      "architecture.\"}\n"
      "\n"
      "   \n"
      "{\"_id\": 21645374, \"title\": \"\", \"text\": \"Programmed cell death.\", "
      "\"meta\": {\"year\": \"2011\", \"mesh\": [\"Apoptosis\", \"Mitochondria\"]}}\r\n"
      "{\"_id\": \"GARD:1\", \"text\": \"No title field. \\u00e9\\n\", \"meta\": null}");
  ReadReport report;
  auto docs = read_beir_jsonl(file, "scifact", {}, &report);
  ASSERT_TRUE(docs.is_ok()) << docs.status().to_string();
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_EQ(report.documents, 3u);
  const Document& a = (*docs)[0];
  EXPECT_EQ(a.doc_id, "4983");
  EXPECT_EQ(a.corpus, "scifact");
  EXPECT_EQ(a.title, "Microstructural development");
  EXPECT_EQ(a.body, "Alterations of the architecture.");
  EXPECT_EQ(a.format, DocFormat::kPlain);
  EXPECT_EQ(a.meta_json, "");
  const Document& b = (*docs)[1];
  EXPECT_EQ(b.doc_id, "21645374");
  EXPECT_EQ(b.title, "");
  EXPECT_EQ(b.meta_json, "{\"year\":\"2011\",\"mesh\":[\"Apoptosis\",\"Mitochondria\"]}");
  const Document& c = (*docs)[2];
  EXPECT_EQ(c.doc_id, "GARD:1");
  EXPECT_EQ(c.title, "");
  EXPECT_EQ(c.body, "No title field. \u00e9\n");
  EXPECT_EQ(c.meta_json, "");
}

// The JSONL metadata object ("metadata", as BEIR writes it, or "meta"):
// strings, numbers and booleans as text, arrays of them as lists; null,
// nested objects and arrays in arrays are not filterable and left out.
TEST(BeirTest, MetadataMembersAreFields) {
  TempDir dir;
  const fs::path file = dir.write(
      "c/corpus.jsonl",
      "{\"_id\": \"a\", \"text\": \"x\", \"metadata\": {\"year\": 2011, \"score\": 1.5, \"open\": true, "
      "\"journal\": \"Cell\", \"mesh\": [\"Apoptosis\", 3, null, [\"deep\"]], \"none\": null, "
      "\"nested\": {\"k\": \"v\"}, \"empty\": []}}\n"
      "{\"_id\": \"b\", \"text\": \"y\", \"meta\": {\"year\": \"2019-05-01\"}}\n");
  auto docs = read_beir_jsonl(file, "c", {}, nullptr);
  ASSERT_TRUE(docs.is_ok()) << docs.status().to_string();
  ASSERT_EQ(docs->size(), 2u);
  const std::vector<MetaField> want = {
      {"year", {"2011"}}, {"score", {"1.5"}}, {"open", {"true"}}, {"journal", {"Cell"}}, {"mesh", {"Apoptosis", "3"}}};
  EXPECT_EQ((*docs)[0].metadata, want);
  EXPECT_NE((*docs)[0].meta_json.find("\"nested\":{\"k\":\"v\"}"), std::string::npos);  // the JSON keeps everything
  EXPECT_EQ((*docs)[1].metadata, (std::vector<MetaField>{{"year", {"2019-05-01"}}}));
  const fs::path both = dir.write("d/corpus.jsonl", "{\"_id\": \"a\", \"text\": \"x\", \"meta\": {}, \"metadata\": {}}\n");
  auto refused = read_beir_jsonl(both, "d", {}, nullptr);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("both \"meta\" and \"metadata\""), std::string::npos)
      << refused.status().to_string();
}

TEST(BeirTest, MalformedLinesNameFileAndLine) {
  struct Case {
    const char* bad_line;
    const char* reason;
  };
  const Case cases[] = {
      {"{\"_id\": \"2\", \"text\": \"unterminated}", "malformed JSON"},
      {"{\"_id\": \"2\", \"text\": \"x\"} trailing", "malformed JSON"},
      {"[\"_id\", \"text\"]", "expected a JSON object"},
      {"{\"title\": \"t\", \"text\": \"x\"}", "missing \"_id\""},
      {"{\"_id\": \"2\", \"title\": \"t\"}", "missing \"text\""},
      {"{\"_id\": \"2\", \"text\": 5}", "\"text\" must be a string"},
      {"{\"_id\": 2.5, \"text\": \"x\"}", "\"_id\" must be a string or an integer"},
      {"{\"_id\": \"2\", \"title\": 7, \"text\": \"x\"}", "\"title\" must be a string"},
      {"{\"_id\": \"2\", \"text\": \"x\", \"meta\": [1]}", "\"meta\" must be an object"},
      {"{\"_id\": \"1\", \"text\": \"duplicate\"}", "duplicate \"_id\" '1'"},
      {"{\"_id\": \"2\", \"text\": \"caf\xe9\"}", "malformed JSON"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    const fs::path file = dir.write(
        "corpus.jsonl", std::string("{\"_id\": \"1\", \"text\": \"first\"}\n\n") + c.bad_line +
                            "\n{\"_id\": \"3\", \"text\": \"third\"}\n");
    auto docs = read_beir_jsonl(file, "x", {}, nullptr);
    ASSERT_FALSE(docs.is_ok()) << c.bad_line;
    EXPECT_EQ(docs.status().code(), StatusCode::kCorrupt);
    const std::string& msg = docs.status().message();
    EXPECT_TRUE(msg.starts_with(file.string() + ":3: ")) << msg;
    EXPECT_NE(msg.find(c.reason), std::string::npos) << msg;

    ReadReport report;
    auto skipped = read_beir_jsonl(file, "x", {.skip_malformed = true}, &report);
    ASSERT_TRUE(skipped.is_ok()) << c.bad_line;
    ASSERT_EQ(skipped->size(), 2u);
    EXPECT_EQ((*skipped)[0].doc_id, "1");
    EXPECT_EQ((*skipped)[1].doc_id, "3");
    EXPECT_EQ(report.documents, 2u);
    EXPECT_EQ(report.skipped, 1u);
    ASSERT_EQ(report.messages.size(), 1u);
    EXPECT_EQ(report.messages[0], msg);
  }
}

// --- Dispatch ---------------------------------------------------------------------

TEST(ReadCorpusTest, Dispatch) {
  TempDir dir;
  dir.write("scifact/corpus.jsonl", "{\"_id\": \"1\", \"text\": \"abstract\"}\n");
  dir.write("scifact/queries.jsonl", "{\"_id\": \"q1\", \"text\": \"a claim\"}\n");
  dir.write("nci-pdq/pdq/a.md", "# A\n");
  dir.write("misc/notes.txt", "text");

  auto by_dir = read_corpus(dir.path() / "scifact", "", {}, nullptr);
  ASSERT_TRUE(by_dir.is_ok()) << by_dir.status().to_string();
  ASSERT_EQ(by_dir->size(), 1u);
  EXPECT_EQ((*by_dir)[0].corpus, "scifact");
  EXPECT_EQ((*by_dir)[0].format, DocFormat::kPlain);

  auto by_file = read_corpus(dir.path() / "scifact" / "corpus.jsonl", "", {}, nullptr);
  ASSERT_TRUE(by_file.is_ok());
  EXPECT_EQ((*by_file)[0].corpus, "scifact");

  auto other_jsonl = read_corpus(dir.path() / "scifact" / "queries.jsonl", "", {}, nullptr);
  ASSERT_TRUE(other_jsonl.is_ok());
  EXPECT_EQ((*other_jsonl)[0].corpus, "queries");

  auto named = read_corpus(dir.path() / "scifact", "literature", {}, nullptr);
  ASSERT_TRUE(named.is_ok());
  EXPECT_EQ((*named)[0].corpus, "literature");

  auto tree = read_corpus(dir.path() / "nci-pdq/", "", {}, nullptr);  // trailing separator
  ASSERT_TRUE(tree.is_ok()) << tree.status().to_string();
  ASSERT_EQ(tree->size(), 1u);
  EXPECT_EQ((*tree)[0].corpus, "nci-pdq");
  EXPECT_EQ((*tree)[0].doc_id, "pdq/a.md");
  EXPECT_EQ((*tree)[0].format, DocFormat::kMarkdown);

  auto not_corpus = read_corpus(dir.path() / "misc" / "notes.txt", "", {}, nullptr);
  EXPECT_EQ(not_corpus.status().code(), StatusCode::kInvalidArgument);
}

TEST(ReadCorpusTest, NonexistentPath) {
  TempDir dir;
  const fs::path missing = dir.path() / "no-such-corpus";
  auto docs = read_corpus(missing, "", {}, nullptr);
  ASSERT_FALSE(docs.is_ok());
  EXPECT_EQ(docs.status().code(), StatusCode::kNotFound);
  EXPECT_NE(docs.status().message().find(missing.string()), std::string::npos);
  auto jsonl = read_beir_jsonl(dir.path() / "corpus.jsonl", "x", {}, nullptr);
  EXPECT_EQ(jsonl.status().code(), StatusCode::kNotFound);
}

// --- Real corpora -----------------------------------------------------------------

#ifdef MEDSEARCH_SHARED_DATA
const fs::path kData = MEDSEARCH_SHARED_DATA;
#else
const fs::path kData;
#endif

TEST(RealCorpusTest, NciPdq) {
  const fs::path root = kData / "nci-pdq";
  if (kData.empty() || !fs::exists(root)) GTEST_SKIP() << "no shared data at " << root;
  ReadReport report;
  const auto t0 = std::chrono::steady_clock::now();
  auto docs = read_corpus(root, "", {}, &report);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(docs.is_ok()) << docs.status().to_string();
  EXPECT_EQ(docs->size(), 1432u);
  EXPECT_EQ(report.skipped, 0u);
  RecordProperty("read_seconds", std::to_string(seconds));
  EXPECT_TRUE(std::is_sorted(docs->begin(), docs->end(),
                             [](const Document& a, const Document& b) { return a.doc_id < b.doc_id; }));
  size_t hp = 0, patient = 0, typed = 0;
  const Document* meso = nullptr;
  for (const Document& d : *docs) {
    EXPECT_EQ(d.corpus, "nci-pdq");
    EXPECT_FALSE(d.title.empty()) << d.doc_id;
    EXPECT_EQ(d.body.find('\r'), std::string::npos) << d.doc_id;
    hp += d.audience == "hp";
    patient += d.audience == "patient";
    typed += !d.cancer_type.empty();
    if (d.doc_id == "pdq/types-mesothelioma-hp-mesothelioma-treatment-pdq.md") meso = &d;
  }
  EXPECT_GT(hp, 100u);
  EXPECT_GT(patient, 100u);
  // Every page that is neither a health-professional summary nor unlabelled is for patients:
  // the side-effect and coping pages say so in their front matter only.
  EXPECT_EQ(hp + patient, docs->size());
  EXPECT_GT(typed, 500u);
  ASSERT_NE(meso, nullptr);
  EXPECT_EQ(meso->title, "Malignant Mesothelioma Treatment (PDQ®) - NCI");
  EXPECT_EQ(meso->audience, "hp");
  EXPECT_EQ(meso->cancer_type, "mesothelioma");
  EXPECT_EQ(meso->last_reviewed, "2025-12-30");
  EXPECT_EQ(meso->tags, Strings({"pdq", "treatment", "cancer-type"}));
}

TEST(RealCorpusTest, BeirCorpora) {
  struct Case {
    const char* name;
    size_t count;
    bool meta;
  };
  for (const Case& c : {Case{"scifact", 5183, false}, Case{"pubmedqa", 1000, true},
                        Case{"medquad", 15678, true}}) {
    const fs::path dir = kData / c.name;
    if (kData.empty() || !fs::exists(dir)) GTEST_SKIP() << "no shared data at " << dir;
    ReadReport report;
    const auto t0 = std::chrono::steady_clock::now();
    auto docs = read_corpus(dir, "", {}, &report);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(docs.is_ok()) << docs.status().to_string();
    EXPECT_EQ(docs->size(), c.count) << c.name;
    EXPECT_EQ(report.documents, c.count);
    EXPECT_EQ((*docs)[0].corpus, c.name);
    EXPECT_EQ(!(*docs)[0].meta_json.empty(), c.meta) << c.name;
    if (c.meta) {
      EXPECT_EQ((*docs)[0].meta_json.front(), '{');
    }
    RecordProperty(std::string(c.name) + "_read_seconds", std::to_string(seconds));
  }
}

}  // namespace
}  // namespace medsearch::io
