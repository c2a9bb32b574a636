// Asymmetric fences: a cheap `light_fence()` on the hot side, a costly `heavy_fence()` on the
// rare side, together ordering store->load across the two threads (Dekker's pattern).
//
// The hot side (a producer publishing an element, a consumer freeing a slot) must not miss a
// waiter that is about to sleep, and the waiter must not miss the hot side's store. Usually that
// needs a full fence on both sides. With Linux `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` the
// rare side forces a full barrier on every running thread of the process, so the hot side only
// needs to stop the compiler from reordering. This is the technique of folly's
// asymmetricHeavyBarrier and of userspace RCU (Desnoyers et al., "User-Level Implementations of
// Read-Copy Update", IEEE TPDS 2012). Where membarrier is unavailable both sides fall back to
// seq_cst fences.
#pragma once

#include <atomic>

namespace conveyor::internal {

// True when membarrier expedited is registered for this process (decided once, at first use).
bool asymmetric_fences_available() noexcept;

namespace detail {
extern std::atomic<bool> g_asymmetric;  // set once at static initialisation; read-mostly
}

inline void light_fence() noexcept {
  // relaxed: the flag is written once before main() and never changes afterwards.
  if (detail::g_asymmetric.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

void heavy_fence() noexcept;

}  // namespace conveyor::internal
