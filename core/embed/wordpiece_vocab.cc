// wordpiece_vocab.cc: the WordPiece vocabulary. Reading vocab.txt as HF does
// (lines, trim_end), checking it (valid UTF-8, the special tokens present),
// and the double-array byte trie over it that token_to_id() and the encoder's
// longest-match walk (wordpiece.cc) use.
#include <medsearch/tokenizer.h>

#include "core/embed/wordpiece_impl.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace medsearch::embed {
using namespace internal;

namespace {

constexpr std::string_view kContinuationPrefix = "##";
// HF's BertWordPieceTokenizer and BERT tokenizer.json files register these as
// special added tokens (normalized: false), matched in the raw text.
constexpr std::array<std::string_view, 5> kSpecialTokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

// Rust's str::trim_end, used by HF's vocab.txt reader.
std::string_view trim_end(std::string_view s) {
  while (!s.empty()) {
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    utf8proc_int32_t cp = -1;
    utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + start),
                     static_cast<utf8proc_ssize_t>(s.size() - start), &cp);
    if (cp < 0 || !is_whitespace(static_cast<char32_t>(cp))) break;
    s.remove_suffix(s.size() - start);
  }
  return s;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    utf8proc_int32_t cp = -1;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// Loading and the trie.
// ---------------------------------------------------------------------------

Result<WordPieceTokenizer> WordPieceTokenizer::from_vocab(std::vector<std::string> tokens) {
  if (tokens.empty()) return Status::invalid_argument("empty vocabulary");
  if (tokens.size() >= static_cast<size_t>(INT32_MAX)) return Status::invalid_argument("vocabulary too large");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!is_valid_utf8(tokens[i])) {
      return Status::invalid_argument("vocabulary entry " + std::to_string(i) + " is not valid UTF-8");
    }
  }

  WordPieceTokenizer tok;
  tok.tokens_ = std::move(tokens);

  // Sort ids by token; for a repeated token the last id wins (HF inserts the
  // lines into a map in order). Empty tokens can never match and are skipped.
  std::vector<int32_t> order(tok.tokens_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return tok.tokens_[a] < tok.tokens_[b]; });
  std::vector<int32_t> ids;
  ids.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& t = tok.tokens_[order[i]];
    if (t.empty()) continue;
    if (i + 1 < order.size() && tok.tokens_[order[i + 1]] == t) continue;
    ids.push_back(order[i]);
  }

  tok.build_trie(ids);

  uint32_t node = 0;
  for (char ch : kContinuationPrefix) {
    if (node != kNoNode) node = tok.child(node, static_cast<uint8_t>(ch));
  }
  tok.continuation_node_ = node;

  for (std::string_view special : kSpecialTokens) {
    const int32_t id = tok.token_to_id(special);
    if (id < 0) {
      if (special == "[MASK]") continue;
      return Status::invalid_argument("vocabulary has no " + std::string(special) + " token");
    }
    tok.special_ids_.push_back(id);
  }
  tok.pad_id_ = tok.token_to_id("[PAD]");
  tok.unk_id_ = tok.token_to_id("[UNK]");
  tok.cls_id_ = tok.token_to_id("[CLS]");
  tok.sep_id_ = tok.token_to_id("[SEP]");
  return tok;
}

Result<WordPieceTokenizer> WordPieceTokenizer::load(const std::filesystem::path& vocab_file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(vocab_file, ec)) {
    return Status::not_found("vocabulary file not found: " + vocab_file.string());
  }
  std::ifstream in(vocab_file, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad() || (!in.eof() && in.fail())) return Status::io_error("cannot read " + vocab_file.string());

  // HF's reader: BufRead::lines() (splits on \n, strips one \r), then trim_end().
  std::vector<std::string> tokens;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    tokens.emplace_back(trim_end(std::string_view(data).substr(pos, end - pos)));
    pos = end + 1;
  }
  auto tok = from_vocab(std::move(tokens));
  if (!tok) return Status::corrupt(vocab_file.string() + ": " + tok.status().message());
  return tok;
}

void WordPieceTokenizer::build_trie(const std::vector<int32_t>& sorted_ids) {
  // Nodes are placed breadth-first. A node's children need free slots at
  // base + c for each of its labels c; we try the free slots in order as the
  // home of the smallest label (first fit, as darts-clone does), and retire a
  // free slot from the candidate list after kMaxFails misses so the search
  // stays linear-ish; a retired slot stays free.
  constexpr uint32_t kNil = UINT32_MAX;
  constexpr uint8_t kMaxFails = 16;
  std::vector<uint32_t> next, prev;  // candidate free slots, ascending
  std::vector<uint8_t> fails;
  uint32_t head = kNil, tail = kNil;
  auto grow = [&](size_t n) {
    const size_t old = units_.size();
    units_.resize(n, Unit{});
    next.resize(n, kNil);
    prev.resize(n, kNil);
    fails.resize(n, 0);
    for (size_t i = old; i < n; ++i) {
      prev[i] = tail;
      if (tail != kNil) next[tail] = static_cast<uint32_t>(i);
      else head = static_cast<uint32_t>(i);
      tail = static_cast<uint32_t>(i);
    }
  };
  auto unlink = [&](uint32_t i) {
    if (prev[i] != kNil) next[prev[i]] = next[i];
    else head = next[i];
    if (next[i] != kNil) prev[next[i]] = prev[i];
    else tail = prev[i];
    prev[i] = next[i] = kNil;
  };
  auto in_list = [&](uint32_t i) { return i == head || prev[i] != kNil; };

  units_.clear();
  grow(1024);
  units_[0].check = kNoNode - 1;  // the root: taken, and nobody's child
  unlink(0);

  struct Pending {
    uint32_t unit;         // where this node lives
    size_t lo, hi, depth;  // sorted_ids[lo, hi) share the node's prefix of length depth
  };
  std::vector<uint8_t> labels;
  std::vector<std::pair<size_t, size_t>> groups;
  std::vector<Pending> queue = {{0, 0, sorted_ids.size(), 0}};
  for (size_t q = 0; q < queue.size(); ++q) {
    const Pending p = queue[q];
    size_t lo = p.lo;
    if (lo < p.hi && tokens_[sorted_ids[lo]].size() == p.depth) units_[p.unit].id = sorted_ids[lo++];
    labels.clear();
    groups.clear();
    for (size_t i = lo; i < p.hi;) {
      const auto label = static_cast<uint8_t>(tokens_[sorted_ids[i]][p.depth]);
      size_t j = i + 1;
      while (j < p.hi && static_cast<uint8_t>(tokens_[sorted_ids[j]][p.depth]) == label) ++j;
      labels.push_back(label);
      groups.emplace_back(i, j);
      i = j;
    }
    if (labels.empty()) continue;

    uint32_t base = 0;
    for (uint32_t f = head;;) {
      if (f + 512 > units_.size()) grow(units_.size() * 2);
      const uint32_t after = next[f];
      if (f > labels[0]) {
        base = f - labels[0];
        bool fits = true;
        for (uint8_t c : labels) {
          if (units_[base + c].check != kNoNode) {
            fits = false;
            break;
          }
        }
        if (fits) break;
        if (++fails[f] >= kMaxFails) unlink(f);
      }
      f = after;
    }
    units_[p.unit].base = base;
    for (size_t k = 0; k < labels.size(); ++k) {
      const uint32_t t = base + labels[k];
      units_[t].check = p.unit;
      if (in_list(t)) unlink(t);
      queue.push_back({t, groups[k].first, groups[k].second, p.depth + 1});
    }
  }
  size_t used = units_.size();
  while (used > 1 && units_[used - 1].check == kNoNode) --used;
  units_.resize(used + 256, Unit{});
  units_.shrink_to_fit();
}

int32_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  if (token.empty() || units_.empty()) return -1;
  uint32_t node = 0;
  for (char ch : token) {
    node = child(node, static_cast<uint8_t>(ch));
    if (node == kNoNode) return -1;
  }
  return units_[node].id;
}

}  // namespace medsearch::embed
