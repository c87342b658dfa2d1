// Tests for core/text/chunker.h: clean text, heading paths, splitting, spans.
#include "core/text/chunker.h"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/corpus.h>

namespace medsearch::text {
namespace {

using Path = std::vector<std::string>;

std::string_view span_text(const ChunkedDocument& doc, const Chunk& c) {
  return std::string_view(doc.clean_text).substr(c.begin, c.end - c.begin);
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    const size_t b = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > b) words.push_back(s.substr(b, i - b));
  }
  return words;
}

bool is_trimmed(std::string_view s) {
  return !s.empty() && !std::isspace(static_cast<unsigned char>(s.front())) &&
         !std::isspace(static_cast<unsigned char>(s.back()));
}

// The invariants every chunked document must satisfy: spans in bounds, in
// order, trimmed, and clear of heading lines.
void expect_well_formed(const ChunkedDocument& doc, uint32_t max_tokens) {
  uint32_t prev_begin = 0;
  for (const Chunk& c : doc.chunks) {
    ASSERT_LE(c.begin, c.end);
    ASSERT_LE(c.end, doc.clean_text.size());
    EXPECT_GE(c.begin, prev_begin) << "chunks out of document order";
    prev_begin = c.begin;
    const std::string_view t = span_text(doc, c);
    EXPECT_TRUE(is_trimmed(t)) << "[" << t << "]";
    EXPECT_LE(split_words(t).size(), max_tokens) << t;
    for (const TextSpan& h : doc.heading_lines) {
      EXPECT_TRUE(h.end <= c.begin || h.begin >= c.end)
          << "chunk [" << t << "] overlaps heading ["
          << doc.clean_text.substr(h.begin, h.end - h.begin) << "]";
    }
  }
  for (const TextSpan& h : doc.heading_lines) {
    ASSERT_LE(h.end, doc.clean_text.size());
    // A heading span is a whole line.
    EXPECT_TRUE(h.begin == 0 || doc.clean_text[h.begin - 1] == '\n');
    EXPECT_TRUE(h.end == doc.clean_text.size() || doc.clean_text[h.end] == '\n');
  }
}

ChunkedDocument chunk(std::string_view md, std::string_view title = "",
                      ChunkerOptions options = {}) {
  ChunkedDocument doc = chunk_markdown(md, title, options);
  expect_well_formed(doc, options.max_tokens);
  return doc;
}

// The single chunk of a one-section document.
std::string only_chunk(std::string_view md) {
  const ChunkedDocument doc = chunk(md, "", {.max_tokens = 1000, .overlap_tokens = 0, .min_tokens = 1});
  EXPECT_EQ(doc.chunks.size(), 1u) << doc.clean_text;
  return doc.chunks.empty() ? std::string() : std::string(span_text(doc, doc.chunks[0]));
}

// --- Cleaning ---------------------------------------------------------------

TEST(ChunkerCleanTest, LinkMarkupReducedToText) {
  EXPECT_EQ(only_chunk("See [Cancer Pain](/about-cancer/pain \"Pain title\") for more."),
            "See Cancer Pain for more.");
  EXPECT_EQ(only_chunk("A [*VHL* gene](/x) and [nested [brackets]](/y) here."),
            "A VHL gene and nested [brackets] here.");
  // Glossary pop-ups are ordinary links: their text is prose.
  EXPECT_EQ(only_chunk("A [malignant](/Common/PopUps/popDefinition.aspx?id=1&version=patient) tumor."),
            "A malignant tumor.");
  // Link text over several lines, even across a blank line.
  EXPECT_EQ(only_chunk("- [Daily Routine\n\nTips on managing your day.](/about/daily)"),
            "- Daily Routine\n\nTips on managing your day.");
  // Unbalanced destination: the first ')' on its line closes it.
  EXPECT_EQ(only_chunk("The drug [was approved](https://x.gov/a#:~:text=receptor%20() for ER+ cancer."),
            "The drug was approved for ER+ cancer.");
}

TEST(ChunkerCleanTest, CitationAnchorsRemoved) {
  EXPECT_EQ(only_chunk("Factors were identified:[[1](#cit/section_1.1),[2](#cit/section_1.2)]"),
            "Factors were identified:");
  EXPECT_EQ(only_chunk("Trials showed this.[[1](#cit/section_7.1)-[8](#cit/section_7.8)] Next one."),
            "Trials showed this. Next one.");
  EXPECT_EQ(only_chunk("Value of evidence [[3](#cit/section_2.3)] here."),
            "Value of evidence here.");
  // A bracketed trial id link is text, brackets included.
  EXPECT_EQ(only_chunk("The trial ([CheckMate743](/clinicaltrials/NCT02899299) "
                       "[[NCT02899299](/clinicaltrials/NCT02899299)]) enrolled patients."),
            "The trial (CheckMate743 [NCT02899299]) enrolled patients.");
}

TEST(ChunkerCleanTest, LevelOfEvidenceAndPubmedLinksRemoved) {
  EXPECT_EQ(only_chunk("Survival improved.[[3](#cit/section_1.3)][[Level of evidence C1]"
                       "(/Common/PopUps/popDefinition.aspx?id=810035&version=HealthProfessional)] "
                       "These were used."),
            "Survival improved. These were used.");
  EXPECT_EQ(only_chunk("Risk fell.[[Level of evidence: I]](/Common/PopUps/popDefinition.aspx?id=663069) OK."),
            "Risk fell. OK.");
  EXPECT_EQ(only_chunk("Smith J: A trial. J Clin Oncol 7: 1-9, 1989. [[PUBMED Abstract]]"
                       "(http://www.ncbi.nlm.nih.gov/entrez/query.fcgi?cmd=Retrieve \"http://x\")"),
            "Smith J: A trial. J Clin Oncol 7: 1-9, 1989.");
  EXPECT_EQ(only_chunk("Jones K: Another. Blood 1: 2, 2014. [[PUBMED Abstract](https://pubmed.gov/1)]"),
            "Jones K: Another. Blood 1: 2, 2014.");
}

TEST(ChunkerCleanTest, NavigationLinesAndImagesRemoved) {
  const ChunkedDocument doc = chunk(
      "## Overview\n\n[Go to Patient Version](/types/x/patient/y)\n\n"
      "![A doctor talks with a patient.](/images/doc.jpg)\n\nReal prose stays here.\n\n"
      "[Go to Health Professional Version](/types/x/hp/y)\n",
      "", {.min_tokens = 1});
  ASSERT_EQ(doc.chunks.size(), 1u);
  EXPECT_EQ(span_text(doc, doc.chunks[0]), "Real prose stays here.");
  EXPECT_EQ(doc.clean_text.find("Go to"), std::string::npos);
  EXPECT_EQ(doc.clean_text.find("doctor"), std::string::npos);
  // A link that merely starts a sentence is not navigation.
  EXPECT_EQ(only_chunk("- Go to bed only when sleepy."), "- Go to bed only when sleepy.");
}

TEST(ChunkerCleanTest, EmphasisMarkersRemoved) {
  EXPECT_EQ(only_chunk("**Systemic therapy**"), "Systemic therapy");
  EXPECT_EQ(only_chunk("A *risk* factor (*P* < .001) and ***NTRK*** and _this_ one."),
            "A risk factor (P < .001) and NTRK and this one.");
  // Escaped markers and intraword underscores are literal.
  EXPECT_EQ(only_chunk("HLA-A\\*02:01 and prior chemotherapy\\* in snake_case_name."),
            "HLA-A*02:01 and prior chemotherapy* in snake_case_name.");
  EXPECT_EQ(only_chunk("2 * 3 is six."), "2 * 3 is six.");
  EXPECT_EQ(only_chunk("Visit <https://smokefree.gov> on <MM/DD/YYYY>."),
            "Visit https://smokefree.gov on <MM/DD/YYYY>.");
}

TEST(ChunkerCleanTest, ReferencesBlocksDropped) {
  const ChunkedDocument doc = chunk(
      "## Carcinogenesis\n\nAsbestos exposure is common.[[1](#cit/section_1.1)]\n\n"
      "###### References\n\n1. Ruffie P, et al.: Diffuse malignant mesothelioma. J Clin Oncol 7: 1989.\n"
      "2. Other A: Title. [[PUBMED Abstract]](http://pubmed/2)\n\n"
      "## Cellular Classification\n\nTumors are composed of spindle cells.\n"
      "## Key References for CML\n\n- Hughes TP: Early molecular response. Blood 2014.\n\n"
      "## Latest Updates\n\nEditorial changes were made.\n",
      "", {.min_tokens = 1});
  ASSERT_EQ(doc.chunks.size(), 3u);
  EXPECT_EQ(span_text(doc, doc.chunks[0]), "Asbestos exposure is common.");
  EXPECT_EQ(doc.chunks[0].heading_path, Path({"Carcinogenesis"}));
  EXPECT_EQ(span_text(doc, doc.chunks[1]), "Tumors are composed of spindle cells.");
  EXPECT_EQ(doc.chunks[1].heading_path, Path({"Cellular Classification"}));
  EXPECT_EQ(doc.chunks[2].heading_path, Path({"Latest Updates"}));
  EXPECT_EQ(doc.clean_text.find("Ruffie"), std::string::npos);
  EXPECT_EQ(doc.clean_text.find("References"), std::string::npos);
  EXPECT_EQ(doc.clean_text.find("Hughes"), std::string::npos);
}

TEST(ChunkerCleanTest, TablesKeepCellText) {
  const ChunkedDocument doc = chunk(
      "Table 1. Definitions\n\n| Stage | TNM | Description |\n| --- | --- | --- |\n|  |  |  |\n"
      "| :--- | ---: | :-: |\n| IA | T1, N0, M0 | T1 = Tumor **limited** to the pleura. |\n"
      "| –visceral pleura. |\n",
      "", {.min_tokens = 1});
  ASSERT_EQ(doc.chunks.size(), 1u);
  EXPECT_EQ(span_text(doc, doc.chunks[0]),
            "Table 1. Definitions\n\nStage | TNM | Description\n"
            "IA | T1, N0, M0 | T1 = Tumor limited to the pleura.\n–visceral pleura.");
}

TEST(ChunkerCleanTest, HeadingsStayAsTextOnly) {
  const ChunkedDocument doc =
      chunk("# Page\n\n### The following *risk* factors increase risk: ###\n\nObesity is one of them.\n");
  ASSERT_EQ(doc.heading_lines.size(), 2u);
  const TextSpan h = doc.heading_lines[1];
  EXPECT_EQ(doc.clean_text.substr(h.begin, h.end - h.begin),
            "The following risk factors increase risk:");
  ASSERT_EQ(doc.chunks.size(), 1u);
  EXPECT_EQ(doc.chunks[0].heading_path,
            Path({"Page", "The following risk factors increase risk:"}));
}

TEST(ChunkerCleanTest, ListItemsStayOnTheirLines) {
  EXPECT_EQ(only_chunk("Prognostic factors:\n\n- Stage.\n- Age.\n  - Nested item.\n1. First.\n2. Second.\n"),
            "Prognostic factors:\n\n- Stage.\n- Age.\n- Nested item.\n1. First.\n2. Second.");
}

TEST(ChunkerCleanTest, CrlfLineEnds) {
  const ChunkedDocument doc = chunk("# Title\r\n\r\n## Part\r\n\r\nSome prose on\r\ntwo lines.\r\n");
  ASSERT_EQ(doc.chunks.size(), 1u);
  EXPECT_EQ(span_text(doc, doc.chunks[0]), "Some prose on\ntwo lines.");
  EXPECT_EQ(doc.clean_text.find('\r'), std::string::npos);
}

// --- Structure --------------------------------------------------------------

TEST(ChunkerStructureTest, HeadingPathClosesLevels) {
  const ChunkedDocument doc = chunk(
      "# Guide\n\nIntro words are here.\n\n## A\n\nText of section A.\n\n### A1\n\nText of A1 here.\n\n"
      "##### Deep\n\nText of deep part.\n\n### A2\n\nText of A2 here.\n\n## B\n\nText of section B.\n"
      "# Other\n\n#### Sub\n\nText of other sub.\n");
  std::vector<Path> paths;
  for (const Chunk& c : doc.chunks) paths.push_back(c.heading_path);
  const std::vector<Path> want = {
      {"Guide"},          {"Guide", "A"}, {"Guide", "A", "A1"}, {"Guide", "A", "A1", "Deep"},
      {"Guide", "A", "A2"}, {"Guide", "B"}, {"Other", "Sub"}};
  EXPECT_EQ(paths, want);
}

TEST(ChunkerStructureTest, TitleHeadingNotRepeated) {
  const std::string md =
      "# Malignant Mesothelioma Treatment (PDQ®) - NCI\n\nLead text of the page.\n\n"
      "# Malignant Mesothelioma Treatment (PDQ®)–Health Professional Version\n\n"
      "## General Information\n\nGeneral prose is here.\n";
  const ChunkedDocument doc = chunk(md, "Malignant Mesothelioma Treatment (PDQ®) - NCI");
  ASSERT_EQ(doc.chunks.size(), 2u);
  EXPECT_EQ(doc.chunks[0].heading_path, Path({"Malignant Mesothelioma Treatment (PDQ®)"}));
  EXPECT_EQ(doc.chunks[1].heading_path,
            Path({"Malignant Mesothelioma Treatment (PDQ®)–Health Professional Version",
                  "General Information"}));
  // The title heading is still a heading line of the clean text.
  EXPECT_EQ(doc.heading_lines.size(), 3u);

  // Title without its " - NCI" suffix matches too; a later equal heading is kept.
  const ChunkedDocument doc2 =
      chunk("# Daily Life\n\n## Work\n\nGoing back to work.\n", "Daily Life - NCI");
  ASSERT_EQ(doc2.chunks.size(), 1u);
  EXPECT_EQ(doc2.chunks[0].heading_path, Path({"Work"}));

  // A different first heading stays in the path.
  const ChunkedDocument doc3 = chunk("# Something Else\n\nSome page text.\n", "Daily Life - NCI");
  ASSERT_EQ(doc3.chunks.size(), 1u);
  EXPECT_EQ(doc3.chunks[0].heading_path, Path({"Something Else"}));

  // No heading at all: the title (without " - NCI") names the passage.
  const ChunkedDocument doc4 = chunk("Just a paragraph of text.\n", "Daily Life - NCI");
  ASSERT_EQ(doc4.chunks.size(), 1u);
  EXPECT_EQ(doc4.chunks[0].heading_path, Path({"Daily Life"}));
}

TEST(ChunkerStructureTest, EmptyHeadingTakesTheNextLine) {
  // cancer.gov Q&A pages: "##" with the question on its own line below.
  const ChunkedDocument doc = chunk(
      "# PSA Test\n\n##\n\nWhat is the PSA test?\n\nPSA is a protein made by the prostate.\n\n"
      "##\n\nIs it recommended?\n\nIt is not recommended for everyone.\n");
  ASSERT_EQ(doc.chunks.size(), 2u);
  EXPECT_EQ(doc.chunks[0].heading_path, Path({"PSA Test", "What is the PSA test?"}));
  EXPECT_EQ(span_text(doc, doc.chunks[0]), "PSA is a protein made by the prostate.");
  EXPECT_EQ(doc.chunks[1].heading_path, Path({"PSA Test", "Is it recommended?"}));
}

TEST(ChunkerStructureTest, EmptySectionsProduceNoPassage) {
  const ChunkedDocument doc = chunk(
      "# Page\n\n## Nav only\n\n[Go to Patient Version](/patient)\n\n"
      "## Refs only\n\n###### References\n\n1. Someone: Something. 2001.\n\n"
      "## Citations only\n\n[[1](#cit/section_1.1)]\n\n"
      "## Too short\n\nCredit: iStock\n\n"
      "## Empty\n\n## Real\n\nThis section has real prose.\n");
  ASSERT_EQ(doc.chunks.size(), 1u);
  EXPECT_EQ(doc.chunks[0].heading_path, Path({"Page", "Real"}));
}

TEST(ChunkerStructureTest, NoPassageCrossesAHeading) {
  std::string md = "# Guide\n\n";
  for (int s = 0; s < 6; ++s) {
    md += "## Section " + std::to_string(s) + "\n\n";
    for (int k = 0; k < 9; ++k) md += "Sentence " + std::to_string(k) + " has exactly six words. ";
    md += "\n\n";
  }
  const ChunkedDocument doc = chunk(md, "", {.max_tokens = 20, .overlap_tokens = 4});
  ASSERT_GT(doc.chunks.size(), 6u);
  for (const Chunk& c : doc.chunks) {
    const std::string_view t = span_text(doc, c);
    EXPECT_EQ(t.find("Section"), std::string_view::npos) << t;
    EXPECT_EQ(t.find("Guide"), std::string_view::npos) << t;
    ASSERT_EQ(c.heading_path.size(), 2u);
  }
}

// --- Splitting --------------------------------------------------------------

std::string numbered_sentences(int n, int words_each) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += "S" + std::to_string(i);
    for (int w = 1; w < words_each - 1; ++w) s += " w";
    s += " end.";
    if (i + 1 < n) s += ' ';
  }
  return s;
}

TEST(ChunkerSplitTest, RespectsBudgetAndOverlapAtSentenceBoundaries) {
  const std::string md = "## Long\n\n" + numbered_sentences(40, 10) + "\n";
  const ChunkerOptions opt{.max_tokens = 50, .overlap_tokens = 12, .min_tokens = 3};
  const ChunkedDocument doc = chunk(md, "", opt);
  ASSERT_GE(doc.chunks.size(), 9u);
  for (size_t i = 0; i < doc.chunks.size(); ++i) {
    const Chunk& c = doc.chunks[i];
    const std::string_view t = span_text(doc, c);
    EXPECT_LE(split_words(t).size(), 50u);
    EXPECT_EQ(t.front(), 'S') << "piece " << i << " does not start a sentence: " << t;
    EXPECT_TRUE(t.ends_with("end.")) << t;
    if (i > 0) {
      const Chunk& p = doc.chunks[i - 1];
      ASSERT_LT(c.begin, p.end) << "no overlap between pieces " << i - 1 << " and " << i;
      ASSERT_GT(c.end, p.end) << "piece " << i << " does not advance";
      const size_t overlap = split_words(doc.clean_text.substr(c.begin, p.end - c.begin)).size();
      EXPECT_GE(overlap, 6u);
      EXPECT_LE(overlap, 24u);
    }
  }
  EXPECT_EQ(doc.chunks.front().begin, doc.clean_text.find("S0 "));
  EXPECT_EQ(doc.chunks.back().end, doc.clean_text.find("S39") + std::string_view("S39 w w w w w w w w end.").size());
}

TEST(ChunkerSplitTest, ListItemsAreBoundaries) {
  std::string md = "## Options\n\nTreatment options include:\n\n";
  for (int i = 0; i < 30; ++i) md += "- option " + std::to_string(i) + " with some more words here\n";
  const ChunkedDocument doc = chunk(md, "", {.max_tokens = 40, .overlap_tokens = 8});
  ASSERT_GE(doc.chunks.size(), 5u);
  for (size_t i = 1; i < doc.chunks.size(); ++i) {
    EXPECT_TRUE(span_text(doc, doc.chunks[i]).starts_with("- option ")) << span_text(doc, doc.chunks[i]);
  }
}

TEST(ChunkerSplitTest, OverlongSentenceSplitsAtWords) {
  std::string sentence = "Begin";
  for (int i = 0; i < 299; ++i) sentence += " w" + std::to_string(i);
  const ChunkedDocument doc = chunk("## S\n\n" + sentence + "\n", "", {.max_tokens = 100, .overlap_tokens = 10});
  ASSERT_EQ(doc.chunks.size(), 4u);
  size_t covered_to = 0;
  for (size_t i = 0; i < doc.chunks.size(); ++i) {
    const auto words = split_words(span_text(doc, doc.chunks[i]));
    EXPECT_LE(words.size(), 100u);
    if (i > 0) {
      const size_t overlap = split_words(doc.clean_text.substr(doc.chunks[i].begin,
                                                               doc.chunks[i - 1].end - doc.chunks[i].begin)).size();
      EXPECT_EQ(overlap, 10u);
    }
    covered_to = doc.chunks[i].end;
  }
  EXPECT_EQ(covered_to, doc.clean_text.find("w298") + 4);
}

TEST(ChunkerSplitTest, NoOverlapAndDegenerateOptions) {
  const std::string md = "## S\n\n" + numbered_sentences(10, 5) + "\n";
  const ChunkedDocument none = chunk(md, "", {.max_tokens = 10, .overlap_tokens = 0, .min_tokens = 1});
  for (size_t i = 1; i < none.chunks.size(); ++i) EXPECT_GT(none.chunks[i].begin, none.chunks[i - 1].end);
  // overlap >= max_tokens and max_tokens == 0 must still terminate.
  const ChunkedDocument big = chunk(md, "", {.max_tokens = 4, .overlap_tokens = 50, .min_tokens = 1});
  EXPECT_GT(big.chunks.size(), 10u);
  const ChunkedDocument zero = chunk_markdown(md, "", {.max_tokens = 0, .overlap_tokens = 0, .min_tokens = 0});
  EXPECT_EQ(zero.chunks.size(), 50u);
}

// --- Plain text -------------------------------------------------------------

TEST(ChunkerPlainTest, TitleAndText) {
  const ChunkedDocument doc = chunk_plain("A title", "  Some abstract text.  ", {});
  EXPECT_EQ(doc.clean_text, "A title\n\n  Some abstract text.  ");
  ASSERT_EQ(doc.chunks.size(), 1u);
  EXPECT_EQ(span_text(doc, doc.chunks[0]), "Some abstract text.");
  EXPECT_EQ(doc.chunks[0].heading_path, Path({"A title"}));
  EXPECT_TRUE(doc.heading_lines.empty());

  const ChunkedDocument untitled = chunk_plain("", "Short.", {});
  EXPECT_EQ(untitled.clean_text, "Short.");
  ASSERT_EQ(untitled.chunks.size(), 1u);  // min_tokens does not apply to abstracts
  EXPECT_TRUE(untitled.chunks[0].heading_path.empty());

  EXPECT_TRUE(chunk_plain("Title only", "   ", {}).chunks.empty());
}

TEST(ChunkerPlainTest, SplitsOnlyWhenLong) {
  const std::string text = numbered_sentences(30, 10);
  const ChunkedDocument one = chunk_plain("T", text, {.max_tokens = 300});
  ASSERT_EQ(one.chunks.size(), 1u);
  EXPECT_EQ(span_text(one, one.chunks[0]), text);

  const ChunkedDocument many = chunk_plain("T", text, {.max_tokens = 100, .overlap_tokens = 20});
  expect_well_formed(many, 100);
  ASSERT_GE(many.chunks.size(), 3u);
  for (const Chunk& c : many.chunks) {
    EXPECT_GE(c.begin, 3u);  // never in the title
    EXPECT_EQ(c.heading_path, Path({"T"}));
  }
}

// --- Real corpus ------------------------------------------------------------

#ifdef MEDSEARCH_SHARED_DATA
const std::filesystem::path kData = MEDSEARCH_SHARED_DATA;
#else
const std::filesystem::path kData;
#endif

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ChunkerRealDataTest, MesotheliomaHeadingPath) {
  const auto file = kData / "nci-pdq/pdq/types-mesothelioma-hp-mesothelioma-treatment-pdq.md";
  if (kData.empty() || !std::filesystem::exists(file)) GTEST_SKIP() << "no shared data at " << file;
  io::Document page;
  ASSERT_TRUE(io::parse_markdown_document(read_all(file), &page).is_ok());
  const ChunkedDocument doc = chunk_markdown(page.body, page.title, {});
  expect_well_formed(doc, ChunkerOptions{}.max_tokens);
  const Chunk* recurrent = nullptr;
  for (const Chunk& c : doc.chunks) {
    if (span_text(doc, c).starts_with("Treatment options for recurrent malignant mesothelioma include:")) {
      recurrent = &c;
    }
  }
  ASSERT_NE(recurrent, nullptr);
  EXPECT_EQ(recurrent->heading_path,
            Path({"Malignant Mesothelioma Treatment (PDQ®)–Health Professional Version",
                  "Treatment of Recurrent Malignant Mesothelioma",
                  "Treatment Options for Recurrent Malignant Mesothelioma"}));
  const std::string_view t = span_text(doc, *recurrent);
  EXPECT_NE(t.find("- Gemcitabine in combination with ramucirumab."), std::string_view::npos);
  EXPECT_EQ(t.find("]("), std::string_view::npos);
  // Markup and reference lists are gone from the whole page.
  for (const char* markup : {"#cit/", "PUBMED", "Level of evidence", "Go to Patient", "**", "]("}) {
    EXPECT_EQ(doc.clean_text.find(markup), std::string::npos) << markup;
  }
  EXPECT_EQ(doc.clean_text.find("Ruffie P, Feld R"), std::string::npos);
}

TEST(ChunkerRealDataTest, AllPagesRoundTrip) {
  const auto root = kData / "nci-pdq";
  if (kData.empty() || !std::filesystem::exists(root)) GTEST_SKIP() << "no shared data at " << root;
  io::ReadReport report;
  auto docs = io::read_corpus(root, "", {}, &report);
  ASSERT_TRUE(docs.is_ok()) << docs.status().to_string();
  ASSERT_EQ(docs->size(), 1432u);
  const ChunkerOptions options;
  size_t passages = 0;
  for (const io::Document& d : *docs) {
    const ChunkedDocument doc = chunk_markdown(d.body, d.title, options);
    passages += doc.chunks.size();
    for (const Chunk& c : doc.chunks) {
      ASSERT_LE(c.end, doc.clean_text.size()) << d.doc_id;
      const std::string_view t = span_text(doc, c);
      ASSERT_TRUE(is_trimmed(t)) << d.doc_id << ": [" << t << "]";
      ASSERT_LE(split_words(t).size(), options.max_tokens) << d.doc_id;
      ASSERT_FALSE(c.heading_path.empty()) << d.doc_id;
      for (const TextSpan& h : doc.heading_lines) {
        ASSERT_TRUE(h.end <= c.begin || h.begin >= c.end) << d.doc_id << ": " << t;
      }
    }
  }
  EXPECT_GT(passages, 20000u);
}

}  // namespace
}  // namespace medsearch::text
