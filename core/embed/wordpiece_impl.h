// wordpiece_impl.h: what the two halves of the WordPiece tokenizer share:
// wordpiece.cc (normalisation, pre-tokenisation and WordPiece matching, one
// code point at a time) and wordpiece_vocab.cc (reading vocab.txt, building
// the vocabulary trie). Not installed.
#pragma once

namespace medsearch::embed::internal {

// Rust char::is_whitespace: the Unicode White_Space property.
inline bool is_whitespace(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

}  // namespace medsearch::embed::internal
