// fuzz_util.h: shared helpers of the libFuzzer targets in tests/fuzz.
//
// Each target is one process (libFuzzer runs inputs one after another in it),
// so a per-process scratch directory under /tmp is enough isolation for the
// readers that take paths; it is removed at exit.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace medsearch::fuzz {

// An invariant the fuzzed code promises: a violation is a finding, so it
// aborts (libFuzzer saves the input) instead of being silently ignored.
#define FUZZ_CHECK(cond, what)                                                    \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s (%s)\n", __FILE__,     \
                   __LINE__, #cond, std::string(what).c_str());                   \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

// /tmp/medsearch-fuzz-<name>-<pid>/, created on first use, removed at exit.
inline const std::filesystem::path& scratch_dir(const char* name) {
  static const std::filesystem::path dir = [name] {
    std::filesystem::path d = std::filesystem::temp_directory_path() /
                              ("medsearch-fuzz-" + std::string(name) + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    static const std::string keep = d.string();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(keep, ec);
    });
    return d;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  FUZZ_CHECK(out.good(), "cannot write " + path.string());
}

// `s` with bytes outside printable ASCII as \xNN, for messages.
inline std::string escaped(std::string_view s) {
  std::string out;
  for (const unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

inline bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    const unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                               : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    if (len == 3 && ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F))) return false;
    if (len == 4 && ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F))) return false;
    i += len;
  }
  return true;
}

}  // namespace medsearch::fuzz
