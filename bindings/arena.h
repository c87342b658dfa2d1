// The `threads=` argument of the Python API: run work in an arena of that
// many oneTBB threads, or in the caller's.
#pragma once

#include <pybind11/pybind11.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <optional>

namespace medsearch::bindings {

// ValueError unless threads is None or at least 1.
inline void check_threads(std::optional<int> threads) {
  if (threads && *threads < 1) throw pybind11::value_error("threads must be at least 1");
}

// Runs `f` in a task_arena of `threads` threads (at most the machine's: a
// larger arena gains nothing, and TBB crashes tearing down one of ~100000
// slots), or in the caller's arena.
template <typename F>
void in_arena(std::optional<int> threads, F&& f) {
  if (threads) {
    tbb::task_arena arena(std::min(*threads, std::max(1, tbb::info::default_concurrency())));
    arena.execute(f);
  } else {
    f();
  }
}

}  // namespace medsearch::bindings
