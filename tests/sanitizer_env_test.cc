// Test-wide set-up for sanitizer builds.
//
// Debian's oneTBB is not built with ThreadSanitizer, so TSan cannot see the
// happens-before edges of its scheduler and would report every hand-off
// between a TBB worker and the caller as a race. Under TSan, TBB therefore
// runs on the calling thread only; the concurrency tests drive the code from
// std::threads, whose synchronisation TSan understands.
#if defined(__SANITIZE_THREAD__)
#include <oneapi/tbb/global_control.h>

namespace {
tbb::global_control tsan_tbb_single_thread(tbb::global_control::max_allowed_parallelism, 1);
}  // namespace
#endif
