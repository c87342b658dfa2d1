// internal::JsonWriter: what it writes parses back (simdjson) to the values
// written, with nesting, escapes and floats that read back bit for bit.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "core/internal/json.h"

namespace medsearch::internal {
namespace {

TEST(JsonWriter, NestedValuesParseBack) {
  JsonWriter w;
  w.begin_object();
  w.key("format").value("medsearch-index").key("version").value(2);
  w.key("big").value(uint64_t{1} << 40).key("yes").value(true).key("no").value(false);
  w.key("escaped \"key\"").value("tab\there, quote \" backslash \\ newline\n and \x01");
  w.key("empty object").begin_object().end_object();
  w.key("empty array").begin_array().end_array();
  w.key("list").begin_array().value("a").begin_object().key("x").value(1).end_object().begin_array().end_array().end_array();
  const std::string text = w.end_object().str();
  ASSERT_EQ(text.back(), '\n');

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text;
  EXPECT_EQ(std::string_view(doc["format"]), "medsearch-index");
  EXPECT_EQ(uint64_t(doc["version"]), 2u);
  EXPECT_EQ(uint64_t(doc["big"]), uint64_t{1} << 40);
  EXPECT_TRUE(bool(doc["yes"]));
  EXPECT_FALSE(bool(doc["no"]));
  EXPECT_EQ(std::string_view(doc["escaped \"key\""]), "tab\there, quote \" backslash \\ newline\n and \x01");
  EXPECT_EQ(simdjson::dom::object(doc["empty object"]).size(), 0u);
  EXPECT_EQ(simdjson::dom::array(doc["empty array"]).size(), 0u);
  simdjson::dom::array list = doc["list"];
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(std::string_view(list.at(0)), "a");
  EXPECT_EQ(uint64_t(list.at(1)["x"]), 1u);
  // One member per line, indented by depth.
  EXPECT_NE(text.find("{\n  \"format\": \"medsearch-index\",\n  \"version\": 2,"), std::string::npos) << text;
}

TEST(JsonWriter, FloatsReadBackAsTheSameFloat) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> unit(-10.0f, 10.0f);
  std::vector<float> values = {0.9f, 0.4f, 1.0f, 0.0f, 1e-30f, 3.4e38f, std::numeric_limits<float>::denorm_min()};
  for (int i = 0; i < 1000; ++i) values.push_back(unit(rng));
  JsonWriter w;
  w.begin_array();
  for (float v : values) w.value(v);
  const std::string text = w.end_array().str();
  simdjson::dom::parser parser;
  simdjson::dom::array parsed;
  ASSERT_EQ(parser.parse(text).get(parsed), simdjson::SUCCESS);
  size_t i = 0;
  for (auto e : parsed) {
    double d = 0;
    ASSERT_EQ(e.get(d), simdjson::SUCCESS);
    EXPECT_EQ(static_cast<float>(d), values[i]) << text.substr(0, 200);
    ++i;
  }
  EXPECT_EQ(i, values.size());
  // The shortest form: what a person wrote is what the file says.
  JsonWriter short_form;
  EXPECT_EQ(short_form.value(0.9f).str(), "0.9\n");
}

}  // namespace
}  // namespace medsearch::internal
