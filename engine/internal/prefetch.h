// Software prefetch hints for the ring fast paths: prefetch_read() for a line another core
// wrote and this one is about to read, prefetch_write() for a line this core is about to
// overwrite while another core may still hold a copy.
//
// Both are hints: they never fault, never change what a program computes, and are invisible to
// the sanitizers (no access is made). Two details make them more than __builtin_prefetch:
//  - GCC's IPA pass marks a function whose only statements are prefetches as const and deletes
//    calls to it (prefetch has no "side effect" in GCC's model), so a helper looping over
//    prefetches vanishes unless it is inlined first: both are always_inline here, and so must
//    be any loop built from them.
//  - __builtin_prefetch(p, 1) emits a plain prefetcht0 unless the build targets PRFCHW
//    (-mprfchw / -march), and a read prefetch of a line another core holds leaves it shared:
//    the store still waits for the invalidation round trip. prefetch_write() uses PREFETCHW,
//    which asks for the line exclusive, when the CPU has it (CPUID 8000_0001h ECX bit 8: every
//    AMD64 CPU since K8, Intel since Broadwell; checked once at start-up, as the instruction is
//    not architecturally a no-op on the CPUs without it), else falls back to a read prefetch.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace conveyor::internal {

#if defined(__x86_64__) || defined(__i386__)
inline bool cpu_has_prefetchw() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0x80000001u, &a, &b, &c, &d) == 0) return false;
  return (c & (1u << 8)) != 0;  // PRFCHW (AMD's "3DNowPrefetch")
}
// Dynamic initialisation; a read before it ran (static initialisers of other translation
// units) sees false and issues the harmless read prefetch.
inline const bool kHasPrefetchW = cpu_has_prefetchw();
#endif

[[gnu::always_inline]] inline void prefetch_read(const void* p) noexcept {
  __builtin_prefetch(p, 0, 3);
}

[[gnu::always_inline]] inline void prefetch_write(const void* p) noexcept {
#if defined(__PRFCHW__)
  __builtin_prefetch(p, 1, 3);
#elif defined(__x86_64__) || defined(__i386__)
  if (kHasPrefetchW) {
    asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
  } else {
    __builtin_prefetch(p, 0, 3);
  }
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

}  // namespace conveyor::internal
