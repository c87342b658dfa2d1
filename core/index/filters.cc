// filters.cc: which documents a search may return. The fields every index
// derives (audience, cancer type, corpus, review date) and any metadata key
// of the documents (SearchFilters::metadata), compiled per query into one
// allowed flag per document; and the text forms of search options the CLI and
// the Python module pass on: add_filter(), parse_mode(), parse_level(), parse_fusion().
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "core/index/index_impl.h"

namespace medsearch {
namespace {

// The value as a number, or NaN: the whole text must be one ("2011", "-1.5e3").
double as_number(std::string_view s) {
  double v = 0;
  if (s.empty()) return std::numeric_limits<double>::quiet_NaN();
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(v) ? v : std::numeric_limits<double>::quiet_NaN();
}

// "YYYY-MM-DD", optionally followed by a time ("2024-05-01T10:00:00Z"), as
// YYYYMMDD; 0 when not a date.
uint32_t as_date(std::string_view s) {
  if (s.size() > 10 && s[10] != 'T' && s[10] != ' ') return 0;
  return date_number(s.substr(0, 10));
}

// A bound of a range filter, read as a number or a date.
struct Bound {
  double number = std::numeric_limits<double>::quiet_NaN();
  uint32_t date = 0;
  bool open = true;
};

Result<Bound> read_bound(const MetadataFilter& f, const std::string& text) {
  Bound b;
  if (text.empty()) return b;
  b.open = false;
  b.number = as_number(text);
  b.date = as_date(text);
  if (std::isnan(b.number) && b.date == 0) {
    return Status::invalid_argument("metadata filter on '" + f.key + "': bound '" + text +
                                    "' is neither a number nor a YYYY-MM-DD date");
  }
  return b;
}

}  // namespace

void internal::Generation::derive_meta_columns() {
  meta_columns.clear();
  for (uint32_t d = 0; d < docs.size(); ++d) {
    for (const auto& field : docs[d]->meta.metadata) {
      auto& column = meta_columns[field.key];
      for (const auto& v : field.values) {
        column.doc.push_back(d);
        column.value.emplace_back(v);
        column.number.push_back(as_number(v));
        column.date.push_back(as_date(v));
      }
    }
  }
}

Result<std::vector<uint8_t>> internal::Generation::compile_filters(const SearchFilters& f,
                                                                   std::vector<UnknownFilter>* unknown) const {
  // A value this generation lacks: an error, or (for a shard) noted and matching nothing.
  auto lacks = [&](std::string key, std::string message) -> Status {
    if (!unknown) return Status::invalid_argument(std::move(message));
    unknown->push_back({std::move(key), std::move(message)});
    return Status::ok();
  };
  std::vector<uint8_t> audience_ok(3, f.audience.empty());
  for (const auto& a : f.audience) {
    const uint8_t code = audience_code(a);
    if (code == kAudienceNone) {
      return Status::invalid_argument("unknown audience filter '" + a + "' (use 'hp' or 'patient')");
    }
    audience_ok[code] = 1;
  }
  std::vector<uint8_t> corpus_ok(corpora.size(), f.corpus.empty());
  for (const auto& c : f.corpus) {
    auto it = std::lower_bound(corpora.begin(), corpora.end(), c);
    if (it == corpora.end() || *it != c) {
      MEDSEARCH_RETURN_IF_ERROR(
          lacks("corpus=" + c, "unknown corpus filter '" + c + "'; this index has: " + join(corpora, ", ")));
      continue;
    }
    corpus_ok[it - corpora.begin()] = 1;
  }
  std::vector<uint8_t> type_ok(cancer_types.size(), f.cancer_type.empty());
  for (const auto& t : f.cancer_type) {
    auto it = std::lower_bound(cancer_types.begin(), cancer_types.end(), t);
    if (t.empty() || it == cancer_types.end() || *it != t) {
      MEDSEARCH_RETURN_IF_ERROR(lacks("cancer_type=" + t, "unknown cancer type filter '" + t + "' (" +
                                                              std::to_string(cancer_types.size() - 1) +
                                                              " types in this index)"));
      continue;
    }
    type_ok[it - cancer_types.begin()] = 1;
  }
  uint32_t after = 0;
  if (!f.reviewed_after.empty()) {
    after = date_number(f.reviewed_after);
    if (after == 0) return Status::invalid_argument("reviewed_after must be a date YYYY-MM-DD, got '" + f.reviewed_after + "'");
  }
  std::vector<uint8_t> allowed(docs.size());
  for (size_t d = 0; d < docs.size(); ++d) {
    allowed[d] = audience_ok[doc_audience[d]] && corpus_ok[doc_corpus[d]] && type_ok[doc_cancer_type[d]] &&
                 (after == 0 || doc_date[d] >= after);
  }
  // Metadata: per filter, the documents with a value that meets it.
  std::vector<uint8_t> meets;
  for (const MetadataFilter& m : f.metadata) {
    const auto column = meta_columns.find(m.key);
    if (column == meta_columns.end()) {
      std::string keys;
      size_t shown = 0;
      for (const auto& [key, unused] : meta_columns) {
        if (shown++ == 12) {
          keys += ", ...";
          break;
        }
        keys += (keys.empty() ? "" : ", ") + key;
      }
      MEDSEARCH_RETURN_IF_ERROR(lacks("metadata:" + m.key, "unknown metadata key '" + m.key + "'" +
                                                               (keys.empty() ? " (the documents of this index have no metadata)"
                                                                             : "; keys in this index: " + keys)));
      // So is each of its values (another shard may have the key, not the value).
      for (const auto& v : m.any_of) {
        MEDSEARCH_RETURN_IF_ERROR(lacks("metadata:" + m.key + "=" + v, "no document has " + m.key + " = '" + v + "'"));
      }
      // Still check the bounds' form, then match nothing.
      MEDSEARCH_RETURN_IF_ERROR(read_bound(m, m.min).status());
      MEDSEARCH_RETURN_IF_ERROR(read_bound(m, m.max).status());
      std::fill(allowed.begin(), allowed.end(), 0);
      continue;
    }
    const MetaColumn& c = column->second;
    for (const auto& v : m.any_of) {
      if (std::find(c.value.begin(), c.value.end(), v) == c.value.end()) {
        MEDSEARCH_RETURN_IF_ERROR(lacks("metadata:" + m.key + "=" + v, "no document has " + m.key + " = '" + v + "'"));
      }
    }
    auto lo = read_bound(m, m.min);
    if (!lo) return lo.status();
    auto hi = read_bound(m, m.max);
    if (!hi) return hi.status();
    meets.assign(docs.size(), 0);
    for (size_t i = 0; i < c.doc.size(); ++i) {
      if (meets[c.doc[i]]) continue;
      if (!m.any_of.empty() && std::find(m.any_of.begin(), m.any_of.end(), c.value[i]) == m.any_of.end()) continue;
      // Each bound compares as a number when both sides are numbers, else as
      // a date when both are dates; otherwise the value is outside it.
      auto within = [&](const Bound& b, bool lower) {
        if (b.open) return true;
        if (!std::isnan(b.number) && !std::isnan(c.number[i])) return lower ? c.number[i] >= b.number : c.number[i] <= b.number;
        if (b.date && c.date[i]) return lower ? c.date[i] >= b.date : c.date[i] <= b.date;
        return false;
      };
      meets[c.doc[i]] = within(*lo, true) && within(*hi, false);
    }
    for (size_t d = 0; d < docs.size(); ++d) allowed[d] &= meets[d];
  }
  return allowed;
}

Result<SearchMode> parse_mode(std::string_view name) {
  for (SearchMode m : {SearchMode::kAuto, SearchMode::kBm25, SearchMode::kDense, SearchMode::kHybrid, SearchMode::kRerank}) {
    if (name == mode_name(m)) return m;
  }
  return Status::invalid_argument("mode must be 'auto', 'bm25', 'dense', 'hybrid' or 'rerank', got '" +
                                  std::string(name) + "'");
}

const char* mode_name(SearchMode mode) {
  switch (mode) {
    case SearchMode::kBm25: return "bm25";
    case SearchMode::kDense: return "dense";
    case SearchMode::kHybrid: return "hybrid";
    case SearchMode::kRerank: return "rerank";
    case SearchMode::kAuto: return "auto";
  }
  return "?";
}

Result<ResultLevel> parse_level(std::string_view name) {
  if (name == "passage") return ResultLevel::kPassage;
  if (name == "doc" || name == "document") return ResultLevel::kDocument;
  return Status::invalid_argument("level must be 'passage' or 'doc', got '" + std::string(name) + "'");
}

Result<Fusion> parse_fusion(std::string_view name) {
  if (name == "convex") return Fusion::kConvex;
  if (name == "rrf") return Fusion::kRrf;
  return Status::invalid_argument("fusion must be 'convex' or 'rrf', got '" + std::string(name) + "'");
}

Status add_filter(std::string_view spec, SearchFilters* f) {
  // The operator: the first '=' (or the ">=" / "<=" it ends).
  const size_t eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size()) {
    return Status::invalid_argument("filter '" + std::string(spec) + "' is not key=value, key>=value or key<=value");
  }
  const char op = spec[eq - 1] == '>' || spec[eq - 1] == '<' ? spec[eq - 1] : '=';
  const std::string key(spec.substr(0, op == '=' ? eq : eq - 1));
  const std::string value(spec.substr(eq + 1));
  if (key.empty()) return Status::invalid_argument("filter '" + std::string(spec) + "' has no key");
  const bool derived = key == "audience" || key == "cancer_type" || key == "corpus" || key == "reviewed_after";
  if (derived && op != '=') {
    return Status::invalid_argument("filter '" + std::string(spec) + "': " + key + " takes key=value");
  }
  if (key == "audience") {
    f->audience.push_back(value);
  } else if (key == "cancer_type") {
    f->cancer_type.push_back(value);
  } else if (key == "corpus") {
    f->corpus.push_back(value);
  } else if (key == "reviewed_after") {
    f->reviewed_after = value;
  } else {
    auto it = std::find_if(f->metadata.begin(), f->metadata.end(), [&](const MetadataFilter& m) { return m.key == key; });
    MetadataFilter& m = it != f->metadata.end() ? *it : f->metadata.emplace_back(MetadataFilter{key, {}, {}, {}});
    if (op == '=') {
      m.any_of.push_back(value);
    } else {
      (op == '>' ? m.min : m.max) = value;
    }
  }
  return Status::ok();
}

}  // namespace medsearch
