#include "engine/internal/asymmetric_fence.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

namespace conveyor::internal {

namespace {

bool register_membarrier() noexcept {
  // CONVEYOR_NO_MEMBARRIER=1 forces the symmetric fallback (used by a test of that path).
  if (const char* off = std::getenv("CONVEYOR_NO_MEMBARRIER"); off && *off == '1') return false;
  const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
  return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

}  // namespace

namespace detail {
std::atomic<bool> g_asymmetric{register_membarrier()};
}

bool asymmetric_fences_available() noexcept {
  return detail::g_asymmetric.load(std::memory_order_relaxed);
}

void heavy_fence() noexcept {
  if (detail::g_asymmetric.load(std::memory_order_relaxed)) {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) {
      // The syscall itself is a full barrier for this thread too.
      return;
    }
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace conveyor::internal
