// Crash safety of Index::save (issue "hardening", item 4): a process killed
// (SIGKILL) at a random point of a save leaves a directory from which
// Index::load() gives the previous index or the new one, whole, never a mix
// or an error; and what killed saves leave behind is removed by the next
// successful save.
//
// Each trial forks a child that saves B, A, B, ... into the directory without
// pause; the parent waits a random time (a few save durations, calibrated
// first), kills the child, then loads and compares the answers to a fixed
// query set with those of A and of B. The child runs no oneTBB work
// (Index::save and the vector indexes' save are single-threaded), so forking
// a process whose TBB workers sit idle is safe; it leaves with _exit(), never
// through gtest.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <medsearch/index.h>

#include "tests/index/tiny_corpus.h"

namespace medsearch {
namespace {

namespace fs = std::filesystem;
using testing::answers;
using testing::corpus;
using testing::TinyEmbedder;

// What a killed save left in the directory.
struct DirState {
  bool has_current = false;
  uint64_t current = 0;   // generation named by CURRENT
  int partial = 0;        // gen-N.partial: a generation being written
  int uncommitted = 0;    // complete gen-N newer than CURRENT's: renamed, CURRENT not yet switched
  int stale = 0;          // gen-N older than CURRENT's: not yet removed
  bool current_tmp = false;  // CURRENT.tmp: the switch was being written
  int entries = 0;
  bool clean() const { return partial == 0 && uncommitted == 0 && stale == 0 && !current_tmp; }
};

DirState inspect(const fs::path& dir) {
  DirState s;
  {
    std::ifstream in(dir / "CURRENT");
    std::string g;
    if (in >> g && g.rfind("gen-", 0) == 0) {
      s.has_current = true;
      s.current = std::strtoull(g.c_str() + 4, nullptr, 10);
    }
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    ++s.entries;
    const std::string name = e.path().filename().string();
    if (name == "CURRENT.tmp") s.current_tmp = true;
    if (name.rfind("gen-", 0) != 0) continue;
    const uint64_t g = std::strtoull(name.c_str() + 4, nullptr, 10);
    if (name.size() > 8 && name.substr(name.size() - 8) == ".partial") {
      ++s.partial;
    } else if (!s.has_current || g > s.current) {
      ++s.uncommitted;
    } else if (g < s.current) {
      ++s.stale;
    }
  }
  return s;
}

// Mean duration of one save of `index` into `dir`, in microseconds, as the
// forked children of run_and_kill() see it: from the child's start to the end
// of its save (not of its exit). A child of a large test process (the whole suite in one
// process) saves several times slower than the parent, its first writes
// faulting in copy-on-write pages, so the parent's own save time would put
// every kill point before the first save ends.
double save_micros(const Index& index, const fs::path& dir, int times) {
  double total = 0;
  for (int i = 0; i < times; ++i) {
    int ready[2];
    if (::pipe(ready) != 0) {
      ADD_FAILURE() << "pipe failed";
      return 0;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork failed";
      return 0;
    }
    if (pid == 0) {
      ::close(ready[0]);
      const char c = 1;
      if (::write(ready[1], &c, 1) != 1) ::_exit(2);
      if (!index.save(dir).is_ok()) ::_exit(3);
      if (::write(ready[1], &c, 1) != 1) ::_exit(2);  // saved (the exit that follows is not timed)
      ::_exit(0);
    }
    ::close(ready[1]);
    char c = 0;
    const bool started = ::read(ready[0], &c, 1) == 1;
    const auto start = std::chrono::steady_clock::now();
    const bool saved = ::read(ready[0], &c, 1) == 1;
    total += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    ::close(ready[0]);
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);
    EXPECT_TRUE(started && saved && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "a timed save failed";
  }
  return total / times;
}

// Forks a child that saves the indexes of `cycle` into `dir` in turn, for
// ever; kills it `delay_us` after it started. Returns false (with a test
// failure) if the child died otherwise than by our SIGKILL.
bool run_and_kill(const std::vector<const Index*>& cycle, const fs::path& dir, int64_t delay_us) {
  int ready[2];
  if (::pipe(ready) != 0) {
    ADD_FAILURE() << "pipe failed";
    return false;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed";
    return false;
  }
  if (pid == 0) {
    ::close(ready[0]);
    const char c = 1;
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    for (size_t i = 0;; ++i) {
      if (!cycle[i % cycle.size()]->save(dir).is_ok()) ::_exit(3);
    }
  }
  ::close(ready[1]);
  char c = 0;
  const bool started = ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  if (started && delay_us > 0) ::usleep(static_cast<useconds_t>(delay_us));
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (!(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)) {
    ADD_FAILURE() << "the saving child ended on its own (exit code "
                  << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) << "): a save failed";
    return false;
  }
  return true;
}

int trials_from_env(int fallback) {
  const char* s = std::getenv("MEDSEARCH_CRASH_TRIALS");
  return s && std::atoi(s) > 0 ? std::atoi(s) : fallback;
}

// Where the trials save. A SIGKILL, unlike a power cut, does not lose what
// was written before it (the page cache outlives the process), so fsync plays
// no part here; on tmpfs a save is CPU-bound (~0.15 ms instead of ~50 ms of
// fsyncs on the shared disk), which makes the trials cheap and spreads the
// kill points over every stage of a save instead of into the fsyncs.
// MEDSEARCH_CRASH_DIR chooses another file system.
fs::path trial_root() {
  if (const char* s = std::getenv("MEDSEARCH_CRASH_DIR"); s && *s) return s;
  std::error_code ec;
  if (fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return fs::temp_directory_path();
}

class CrashSafeSave : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = trial_root() /
           ("medsearch_crash_test_" + std::to_string(::getpid()) + (GetParam() ? "_dense" : "_bm25"));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Index> build(const std::string& tag, size_t n, uint32_t seed) {
    BuildOptions options;
    std::shared_ptr<const embed::Embedder> embedder;
    if (GetParam()) {
      embedder = std::make_shared<TinyEmbedder>();
      options.exact_below = 30;  // B (fewer passages) gets a flat dense index, A an HNSW graph
    }
    auto index = Index::build(corpus(tag, n, seed), options, nullptr, embedder);
    EXPECT_TRUE(index.is_ok()) << index.status().to_string();
    return std::move(index).value();
  }

  // Loads the directory and checks that it answers exactly as one of
  // `candidates`; returns which (-1: none, with a test failure).
  int load_and_identify(const std::vector<std::vector<std::string>>& candidates, int trial) {
    auto loaded = Index::load(dir_);
    if (!loaded) {
      ADD_FAILURE() << "trial " << trial << ": load failed: " << loaded.status().to_string();
      return -1;
    }
    if ((*loaded)->has_vectors()) {
      EXPECT_TRUE((*loaded)->attach_embedder(std::make_shared<TinyEmbedder>()).is_ok());
    }
    const auto got = answers(**loaded);
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (got == candidates[i]) return static_cast<int>(i);
    }
    ADD_FAILURE() << "trial " << trial << ": the loaded index answers like neither A nor B; first line: " << got[0];
    return -1;
  }

  fs::path dir_;
};

TEST_P(CrashSafeSave, KilledSavesLeaveTheOldOrTheNewIndex) {
  auto a = build("a", 40, 1);
  auto b = build("b", 14, 2);
  const auto answers_a = answers(*a), answers_b = answers(*b);
  ASSERT_NE(answers_a, answers_b);
  for (const auto& line : answers_a) ASSERT_EQ(line.find(" error "), std::string::npos) << line;

  const double save_us = (save_micros(*a, dir_, 3) + save_micros(*b, dir_, 3)) / 2;
  ASSERT_TRUE(a->save(dir_).is_ok());
  // Kill points spread over about three saves (the child alternates B and A),
  // so every stage of a save (writing the files, renaming the generation,
  // switching CURRENT, removing old generations) is hit many times.
  const int64_t window_us = std::max<int64_t>(200, static_cast<int64_t>(3 * save_us));
  const int trials = trials_from_env(200);
  std::mt19937_64 rng(20250611u + GetParam());
  std::uniform_int_distribution<int64_t> delay(0, window_us);

  int loaded_a = 0, loaded_b = 0, clean = 0, partial = 0, uncommitted = 0, stale = 0, current_tmp = 0;
  int max_entries = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < trials; ++t) {
    if (!run_and_kill({b.get(), a.get()}, dir_, delay(rng))) break;
    const DirState s = inspect(dir_);
    clean += s.clean();
    partial += s.partial > 0;
    uncommitted += s.uncommitted > 0;
    stale += s.stale > 0;
    current_tmp += s.current_tmp;
    max_entries = std::max(max_entries, s.entries);
    const int which = load_and_identify({answers_a, answers_b}, t);
    if (which < 0) break;
    (which == 0 ? loaded_a : loaded_b) += 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "[ crash    ] %s, in %s: %d trials in %.1f s (one save %.0f us, kill window %lld us): loaded A %d, B %d; left "
      "behind: nothing %d, a .partial generation %d, an uncommitted generation %d, an old generation %d, "
      "CURRENT.tmp %d; at most %d directory entries\n",
      GetParam() ? "with vectors" : "BM25 only", dir_.parent_path().c_str(), trials, seconds, save_us,
      static_cast<long long>(window_us),
      loaded_a, loaded_b, clean, partial, uncommitted, stale, current_tmp, max_entries);
  EXPECT_EQ(loaded_a + loaded_b, trials);
  // The kills must have landed inside saves, not only between them.
  EXPECT_GT(trials - clean, trials / 10);
  EXPECT_GT(loaded_a, 0);
  EXPECT_GT(loaded_b, 0);
  // Each save first removes what killed saves left, so the directory stays
  // small however many saves die in a row: CURRENT, CURRENT.tmp, the current
  // generation, the previous one (until removed) and the one being written.
  EXPECT_LE(max_entries, 5);

  // Leftovers do not accumulate: one successful save removes them all.
  ASSERT_TRUE(a->save(dir_).is_ok());
  const DirState after = inspect(dir_);
  EXPECT_TRUE(after.clean());
  EXPECT_EQ(after.entries, 2) << "expected CURRENT and one generation";
  EXPECT_EQ(load_and_identify({answers_a}, trials), 0);
}

// A save killed while writing the first index into an empty directory leaves
// no index (kNotFound) or the whole index, and the next save succeeds.
TEST_P(CrashSafeSave, KilledFirstSaveLeavesNoIndexOrTheWholeIndex) {
  auto a = build("a", 40, 1);
  const auto answers_a = answers(*a);
  const double save_us = save_micros(*a, dir_, 3);
  const int64_t window_us = std::max<int64_t>(200, static_cast<int64_t>(3 * save_us));
  const int trials = std::max(10, trials_from_env(200) / 4);
  std::mt19937_64 rng(777u + GetParam());
  std::uniform_int_distribution<int64_t> delay(0, window_us);
  int none = 0, whole = 0;
  auto trial = [&](int t, int64_t delay_us) {
    fs::remove_all(dir_);
    if (!run_and_kill({a.get()}, dir_, delay_us)) return false;
    if (!fs::exists(dir_ / "CURRENT")) {
      auto r = Index::load(dir_);
      EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << "trial " << t << ": " << r.status().to_string();
      ++none;
      EXPECT_TRUE(a->save(dir_).is_ok()) << "trial " << t << ": a save over a killed first save must succeed";
    } else {
      ++whole;
    }
    EXPECT_EQ(load_and_identify({answers_a}, t), 0);
    return !::testing::Test::HasFailure();
  };
  for (int t = 0; t < trials; ++t) {
    if (!trial(t, delay(rng))) return;
  }
  // On a loaded machine the child's save times vary: try the outcome not yet
  // seen on purpose (kill at once, or after the whole window).
  for (int t = trials; (none == 0 || whole == 0) && t < 2 * trials; ++t) {
    if (!trial(t, none == 0 ? 0 : 4 * window_us)) return;
  }
  std::printf("[ crash    ] first save, %s: %d trials: no index yet %d, whole index %d\n",
              GetParam() ? "with vectors" : "BM25 only", none + whole, none, whole);
  EXPECT_GT(none, 0);
  EXPECT_GT(whole, 0);
}

INSTANTIATE_TEST_SUITE_P(Index, CrashSafeSave, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Dense" : "Bm25"; });

}  // namespace
}  // namespace medsearch
