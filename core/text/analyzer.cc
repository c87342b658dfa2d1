// analyzer.cc: segmentation on input bytes, per-token normalisation, then
// stopwords and Snowball stemming. The rules are documented in analyzer.h.
#include "core/text/analyzer.h"

#include <libstemmer.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <mutex>
#include <utility>

namespace medsearch::text {
namespace {

// What a code point can do in a token; see the rules in analyzer.h.
enum class CharClass : uint8_t {
  kSeparator,
  kLetter,
  kDigit,
  kMark,         // continues a word, never starts one
  kHyphen,       // joins any two word characters
  kDot,          // joins letter.letter and digit.digit
  kComma,        // joins digit,digit
  kApostrophe,   // joins (letter|digit)'letter
  kPercent,      // ends a token that ends in a digit
  kComparison,   // starts a token directly before a number
  kTransparent,  // soft hyphen, zero-width (non-)joiner: dropped inside a word
};

constexpr std::array<CharClass, 128> make_ascii_classes() {
  std::array<CharClass, 128> t{};
  for (auto& c : t) c = CharClass::kSeparator;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = CharClass::kLetter;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = CharClass::kLetter;
  for (int c = '0'; c <= '9'; ++c) t[c] = CharClass::kDigit;
  t['-'] = CharClass::kHyphen;
  t['.'] = CharClass::kDot;
  t[','] = CharClass::kComma;
  t['\''] = CharClass::kApostrophe;
  t['%'] = CharClass::kPercent;
  t['<'] = CharClass::kComparison;
  t['>'] = CharClass::kComparison;
  return t;
}
constexpr std::array<CharClass, 128> kAsciiClass = make_ascii_classes();

CharClass classify_non_ascii(int32_t cp) {
  switch (cp) {
    case 0x2010:  // HYPHEN (NFKC keeps it, so the term spells it '-')
    case 0x2011:  // NON-BREAKING HYPHEN
    case 0xFE63:  // SMALL HYPHEN-MINUS
      return CharClass::kHyphen;
    case 0x2019:  // RIGHT SINGLE QUOTATION MARK, the typographic apostrophe
      return CharClass::kApostrophe;
    case 0x00B1:  // ±
    case 0x2264:  // ≤
    case 0x2265:  // ≥
      return CharClass::kComparison;
    case 0x00AD:  // SOFT HYPHEN: web text puts it inside words
    case 0x200C:  // ZERO WIDTH NON-JOINER
    case 0x200D:  // ZERO WIDTH JOINER
    case 0x2060:  // WORD JOINER
      return CharClass::kTransparent;
    default:
      break;
  }
  // Full-width ASCII (U+FF01..U+FF5E) behaves like the ASCII it folds to
  // under NFKC, so "ＰＤ－Ｌ１" segments like "PD-L1".
  if (cp >= 0xFF01 && cp <= 0xFF5E) return kAsciiClass[cp - 0xFEE0];
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return CharClass::kLetter;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
      return CharClass::kMark;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return CharClass::kDigit;
    default:
      return CharClass::kSeparator;
  }
}

struct Decoded {
  int32_t cp;    // -1 for an invalid byte
  uint32_t len;  // bytes, >= 1
  CharClass cls;
};

// Decodes the code point at text[i]; i < text.size(). An invalid UTF-8
// sequence reads as a one-byte separator, so scanning always advances.
inline Decoded decode_at(std::string_view text, size_t i) {
  const auto b = static_cast<uint8_t>(text[i]);
  if (b < 0x80) return {b, 1, kAsciiClass[b]};
  utf8proc_int32_t cp = -1;
  const utf8proc_ssize_t n = utf8proc_iterate(
      reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
      static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
  if (n <= 0) return {-1, 1, CharClass::kSeparator};
  return {cp, static_cast<uint32_t>(n), classify_non_ascii(cp)};
}

inline CharClass class_at(std::string_view text, size_t i) {
  return i < text.size() ? decode_at(text, i).cls : CharClass::kSeparator;
}

inline bool is_word(CharClass c) { return c == CharClass::kLetter || c == CharClass::kDigit; }

// Length in bytes of a final "'s" of `piece` (apostrophe: ' ’ ＇; s: s S ｓ Ｓ),
// or 0. The caller guarantees at least one word character before it.
size_t possessive_length(std::string_view piece) {
  size_t s_len = 0;
  if (piece.ends_with('s') || piece.ends_with('S')) {
    s_len = 1;
  } else if (piece.ends_with("\xEF\xBD\x93") || piece.ends_with("\xEF\xBC\xB3")) {
    s_len = 3;
  } else {
    return 0;
  }
  const std::string_view rest = piece.substr(0, piece.size() - s_len);
  if (rest.ends_with('\'')) return s_len + 1;
  if (rest.ends_with("\xE2\x80\x99") || rest.ends_with("\xEF\xBC\x87")) return s_len + 3;
  return 0;
}

constexpr size_t kStemCacheSize = 4096;  // power of two; ~200 KB per scratch

// FNV-1a: terms are short, so a simple byte hash is as fast as anything.
inline uint64_t hash_term(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return h;
}

constexpr utf8proc_option_t kNormalizeOptions = static_cast<utf8proc_option_t>(
    UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD |
    UTF8PROC_STRIPMARK | UTF8PROC_IGNORE);

struct StemmerDeleter {
  void operator()(sb_stemmer* s) const { sb_stemmer_delete(s); }
};
using StemmerPtr = std::unique_ptr<sb_stemmer, StemmerDeleter>;

StemmerPtr new_stemmer(const std::string& name) {
  return StemmerPtr(sb_stemmer_new(name.c_str(), "UTF_8"));
}

// Per-call working memory. Reused across calls through the pool, so the
// buffers keep their capacity and the hot path does not allocate.
struct Scratch {
  StemmerPtr stemmer;  // null when stemming is off; not thread-safe, hence pooled
  std::string term;
  std::string canonical;
  std::vector<utf8proc_int32_t> code_points;
  std::vector<uint32_t> hyphens;  // byte offsets of the joining hyphens of a token
  // Direct-mapped memo of recent stems. Term frequencies are Zipfian, so most
  // lookups hit and skip the Snowball call (the largest cost of analyze()).
  // Entries keep their string capacity, so a warm cache does not allocate.
  struct StemEntry {
    std::string word;
    std::string stem;
  };
  std::vector<StemEntry> stem_cache;  // kStemCacheSize entries once stemming starts
};

// Scratches for concurrent calls, as hnswlib's VisitedListPool: a call pops
// one (or makes one) and pushes it back, so the pool grows to the number of
// threads analysing at once and each stemmer is used by one thread at a time.
class ScratchPool {
 public:
  // `stemmer_name` must be a valid libstemmer name when `stem` is set.
  ScratchPool(bool stem, std::string stemmer_name)
      : stem_(stem), stemmer_name_(std::move(stemmer_name)) {}

  std::unique_ptr<Scratch> acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        std::unique_ptr<Scratch> s = std::move(free_.back());
        free_.pop_back();
        return s;
      }
    }
    auto s = std::make_unique<Scratch>();
    // The name was validated by the Analyzer constructor, so this is null
    // only when out of memory; such a scratch then does not stem.
    if (stem_) s->stemmer = new_stemmer(stemmer_name_);
    return s;
  }
  void release(std::unique_ptr<Scratch> s) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(s));
  }

 private:
  const bool stem_;
  const std::string stemmer_name_;
  // Held only to pop or push one scratch, never while analysing.
  std::mutex mu_;
  std::vector<std::unique_ptr<Scratch>> free_;  // guarded by mu_
};

// Borrows a scratch for the duration of one call.
class ScratchLease {
 public:
  explicit ScratchLease(ScratchPool& pool) : pool_(pool), scratch_(pool.acquire()) {}
  ~ScratchLease() { pool_.release(std::move(scratch_)); }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  Scratch& operator*() const { return *scratch_; }

 private:
  ScratchPool& pool_;
  std::unique_ptr<Scratch> scratch_;
};

// Writes the normalised form of `piece` (one token's input bytes) to
// scratch.term: NFKC + case fold + mark stripping, hyphens spelled '-',
// apostrophes '\'', ASCII "<=" / ">=" spelled "≤" / "≥".
void normalize(std::string_view piece, Scratch& scratch) {
  std::string& out = scratch.term;
  out.clear();
  // ASCII fast path: NFKC and case folding of ASCII is plain lower-casing.
  size_t i = 0;
  for (; i < piece.size(); ++i) {
    char c = piece[i];
    if (static_cast<uint8_t>(c) >= 0x80) break;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
    if ((c == '<' || c == '>') && i + 1 < piece.size() && piece[i + 1] == '=') {
      out += (c == '<') ? "\xE2\x89\xA4" : "\xE2\x89\xA5";
      ++i;
      continue;
    }
    out.push_back(c);
  }
  if (i == piece.size()) return;

  // Slow path: canonicalise the joiners ourselves (NFKC keeps U+2010 and
  // U+2019), then let utf8proc do the rest.
  std::string& canon = scratch.canonical;
  canon.clear();
  for (size_t j = 0; j < piece.size();) {
    const Decoded d = decode_at(piece, j);
    switch (d.cls) {
      case CharClass::kHyphen:
        canon.push_back('-');
        break;
      case CharClass::kApostrophe:
        canon.push_back('\'');
        break;
      case CharClass::kTransparent:
        break;
      default:
        if ((d.cp == '<' || d.cp == '>') && j + 1 < piece.size() && piece[j + 1] == '=') {
          canon += (d.cp == '<') ? "\xE2\x89\xA4" : "\xE2\x89\xA5";
          j += 2;
          continue;
        }
        canon.append(piece.substr(j, d.len));
    }
    j += d.len;
  }

  auto& buf = scratch.code_points;
  const auto* src = reinterpret_cast<const utf8proc_uint8_t*>(canon.data());
  const auto src_len = static_cast<utf8proc_ssize_t>(canon.size());
  if (buf.size() < canon.size() + 1) buf.resize(canon.size() + 1);
  utf8proc_ssize_t n = utf8proc_decompose(src, src_len, buf.data(),
                                          static_cast<utf8proc_ssize_t>(buf.size()),
                                          kNormalizeOptions);
  if (n >= 0 && static_cast<size_t>(n) >= buf.size()) {
    // Compatibility decompositions can expand ("ﷺ" is 18 code points).
    // reencode needs one spare slot for its terminating NUL.
    buf.resize(static_cast<size_t>(n) + 1);
    n = utf8proc_decompose(src, src_len, buf.data(), static_cast<utf8proc_ssize_t>(buf.size()),
                           kNormalizeOptions);
  }
  if (n < 0) {
    // Cannot happen: decode_at() only lets valid UTF-8 into a token. Keep
    // the token as it was rather than lose it.
    assert(false && "utf8proc_decompose failed on a validated token");
    out = canon;
    return;
  }
  const utf8proc_ssize_t bytes = utf8proc_reencode(buf.data(), n, kNormalizeOptions);
  if (bytes < 0) {
    assert(false && "utf8proc_reencode failed");
    out = canon;
    return;
  }
  out.assign(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(bytes));
}

// True if the normalised `term` is made of letters only (any script).
bool is_alphabetic(std::string_view term) {
  for (size_t i = 0; i < term.size();) {
    const auto b = static_cast<uint8_t>(term[i]);
    if (b < 0x80) {
      if (kAsciiClass[b] != CharClass::kLetter) return false;
      ++i;
      continue;
    }
    const Decoded d = decode_at(term, i);
    if (d.cls != CharClass::kLetter) return false;
    i += d.len;
  }
  return true;
}

// Calls emit(scratch.term, begin, end) for each token of `text`, in order,
// with the normalised (not stemmed) term and its input byte span.
template <typename Emit>
void for_each_token(std::string_view text, Scratch& scratch, bool split_parts, Emit&& emit) {
  assert(text.size() < (size_t{1} << 32));
  const size_t n = text.size();
  auto& hyphens = scratch.hyphens;

  auto emit_piece = [&](size_t begin, size_t end) {
    // Every final "'s" goes ("A1's's" -> "a1"), so a token's own span
    // analyses to the same term again.
    for (size_t cut; (cut = possessive_length(text.substr(begin, end - begin))) > 0 && cut < end - begin;) end -= cut;
    if (end - begin > kMaxTokenBytes) return;
    normalize(text.substr(begin, end - begin), scratch);
    if (scratch.term.empty()) return;  // e.g. only default-ignorable code points
    emit(scratch.term, static_cast<uint32_t>(begin), static_cast<uint32_t>(end));
  };

  size_t i = 0;
  while (i < n) {
    const Decoded first = decode_at(text, i);
    const size_t start = i;
    size_t j = i;
    if (is_word(first.cls)) {
      // An ordinary start; the loop below consumes it.
    } else if (first.cls == CharClass::kComparison) {
      // "≥50%", "<49", ">=50", "<.05": a comparison starts a token only
      // directly before a number.
      size_t k = i + first.len;
      if ((first.cp == '<' || first.cp == '>') && k < n && text[k] == '=') ++k;
      CharClass next = class_at(text, k);
      if (next == CharClass::kDot && class_at(text, k + 1) == CharClass::kDigit) {
        ++k;
        next = CharClass::kDigit;
      }
      if (next != CharClass::kDigit) {
        i += first.len;
        continue;
      }
      j = k;
    } else {
      i += first.len;
      continue;
    }

    hyphens.clear();
    bool has_digit = false;
    CharClass prev = CharClass::kSeparator;  // kind of the last word character
    while (j < n) {
      const Decoded c = decode_at(text, j);
      bool join = false;
      switch (c.cls) {
        case CharClass::kLetter:
          prev = CharClass::kLetter;
          j += c.len;
          continue;
        case CharClass::kDigit:
          prev = CharClass::kDigit;
          has_digit = true;
          j += c.len;
          continue;
        case CharClass::kMark:
          if (!is_word(prev)) break;
          j += c.len;
          continue;
        case CharClass::kTransparent: {
          const CharClass next = class_at(text, j + c.len);
          join = is_word(prev) && (is_word(next) || next == CharClass::kMark ||
                                   next == CharClass::kTransparent);
          if (join) {
            j += c.len;  // prev stays: the invisible character is not there
            continue;
          }
          break;
        }
        case CharClass::kHyphen:
          join = is_word(prev) && is_word(class_at(text, j + c.len));
          if (join) hyphens.push_back(static_cast<uint32_t>(j));
          break;
        case CharClass::kDot: {
          const CharClass next = class_at(text, j + c.len);
          join = (prev == CharClass::kLetter && next == CharClass::kLetter) ||
                 (prev == CharClass::kDigit && next == CharClass::kDigit);
          break;
        }
        case CharClass::kComma:
          join = prev == CharClass::kDigit && class_at(text, j + c.len) == CharClass::kDigit;
          break;
        case CharClass::kApostrophe:
          join = is_word(prev) && class_at(text, j + c.len) == CharClass::kLetter;
          break;
        case CharClass::kPercent:
          if (prev == CharClass::kDigit) {
            j += c.len;
            prev = CharClass::kSeparator;  // '%' ends the token
          }
          break;
        default:
          break;
      }
      if (!join) break;
      j += c.len;
      prev = CharClass::kSeparator;  // the next character is a word character
    }

    if (!hyphens.empty() && !has_digit) {
      // Alphabetic compound ("non-small"): index the parts.
      size_t part_begin = start;
      for (const uint32_t h : hyphens) {
        emit_piece(part_begin, h);
        part_begin = h + decode_at(text, h).len;
      }
      emit_piece(part_begin, j);
    } else {
      emit_piece(start, j);
      if (!hyphens.empty() && split_parts) {
        // "her2-positive": the whole token, then its parts, so "HER2" and
        // "HER2 positive" find it too.
        size_t part_begin = start;
        for (const uint32_t h : hyphens) {
          emit_piece(part_begin, h);
          part_begin = h + decode_at(text, h).len;
        }
        emit_piece(part_begin, j);
      }
    }
    i = j;
  }
}

}  // namespace

struct Analyzer::Impl {
  Impl(bool stem, std::string stemmer_name) : pool(stem, std::move(stemmer_name)) {}
  ScratchPool pool;  // internally locked; const analyze() borrows from it
};

Analyzer::Analyzer(AnalyzerOptions options) : options_(std::move(options)) {
  StemmerPtr first;
  if (options_.stem) {
    first = new_stemmer(options_.stemmer);
    // Documented: an unknown name switches stemming off (create() reports it).
    if (first == nullptr) options_.stem = false;
  }
  impl_ = std::make_unique<Impl>(options_.stem, options_.stemmer);
  if (first != nullptr) {
    // Keep the stemmer that validated the name as the pool's first scratch.
    auto scratch = std::make_unique<Scratch>();
    scratch->stemmer = std::move(first);
    impl_->pool.release(std::move(scratch));
  }
}

Analyzer::~Analyzer() = default;
Analyzer::Analyzer(Analyzer&&) noexcept = default;
Analyzer& Analyzer::operator=(Analyzer&&) noexcept = default;

Result<Analyzer> Analyzer::create(AnalyzerOptions options) {
  const bool want_stem = options.stem;
  Analyzer analyzer(std::move(options));
  if (want_stem && !analyzer.options().stem) {
    std::string known;
    for (const char** name = sb_stemmer_list(); *name != nullptr; ++name) {
      if (!known.empty()) known += ", ";
      known += *name;
    }
    return Status::invalid_argument("unknown stemmer '" + analyzer.options().stemmer +
                                    "'; libstemmer has: " + known);
  }
  return analyzer;
}

void Analyzer::analyze(std::string_view text, std::vector<Token>* out) const {
  assert(impl_ != nullptr && "use of a moved-from Analyzer");
  ScratchLease lease(impl_->pool);
  Scratch& scratch = *lease;
  sb_stemmer* const stemmer = scratch.stemmer.get();
  if (stemmer != nullptr && scratch.stem_cache.empty()) scratch.stem_cache.resize(kStemCacheSize);
  const bool drop_stopwords = options_.remove_stopwords;
  uint32_t position = 0;
  for_each_token(text, scratch, options_.compound_parts, [&](const std::string& term, uint32_t begin, uint32_t end) {
    const uint32_t pos = position++;
    if (drop_stopwords && is_stopword(term)) return;
    Token& token = out->emplace_back();
    token.position = pos;
    token.begin = begin;
    token.end = end;
    if (stemmer != nullptr && is_alphabetic(term)) {
      Scratch::StemEntry& entry = scratch.stem_cache[hash_term(term) & (kStemCacheSize - 1)];
      if (entry.word != term) {
        const sb_symbol* stemmed = sb_stemmer_stem(
            stemmer, reinterpret_cast<const sb_symbol*>(term.data()), static_cast<int>(term.size()));
        if (stemmed == nullptr) {  // out of memory: keep the word, do not cache
          token.term = term;
          return;
        }
        entry.word = term;
        entry.stem.assign(reinterpret_cast<const char*>(stemmed),
                          static_cast<size_t>(sb_stemmer_length(stemmer)));
        // Porter stems "s" to nothing; an empty term would make every such
        // word match every other, so the word stays as it is.
        if (entry.stem.empty()) entry.stem = term;
      }
      token.term = entry.stem;
      return;
    }
    token.term = term;
  });
}

std::vector<std::string> Analyzer::terms(std::string_view text) const {
  std::vector<Token> tokens;
  analyze(text, &tokens);
  std::vector<std::string> result;
  result.reserve(tokens.size());
  for (Token& t : tokens) result.push_back(std::move(t.term));
  return result;
}

std::vector<std::string> Analyzer::tokenize(std::string_view text) const {
  assert(impl_ != nullptr && "use of a moved-from Analyzer");
  ScratchLease lease(impl_->pool);
  std::vector<std::string> result;
  for_each_token(text, *lease, /*split_parts=*/false, [&](const std::string& term, uint32_t, uint32_t) {
    result.push_back(term);
  });
  return result;
}

bool is_stopword(std::string_view word) {
  // Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, sorted for binary search.
  static constexpr std::array<std::string_view, 33> kStopwords = {
      "a",    "an",   "and",  "are",  "as",    "at",   "be",    "but",   "by",
      "for",  "if",   "in",   "into", "is",    "it",   "no",    "not",   "of",
      "on",   "or",   "such", "that", "the",   "their", "then", "there", "these",
      "they", "this", "to",   "was",  "will",  "with"};
  static_assert(std::is_sorted(kStopwords.begin(), kStopwords.end()));
  if (word.empty() || word.size() > 5) return false;  // the longest is "their"
  return std::binary_search(kStopwords.begin(), kStopwords.end(), word);
}

}  // namespace medsearch::text
