#include "engine/crc32c.h"

#include <boost/crc.hpp>

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#define CONVEYOR_CRC32C_X86 1
#include <nmmintrin.h>
#endif

namespace conveyor::crc32c {
namespace {

// The register holds the complement of the running CRC (init and final xor are 0xFFFFFFFF), so
// extending a finished CRC starts from its complement and complements again at the end.
constexpr std::uint32_t kXor = 0xFFFFFFFFu;

using BoostCrc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

// Bit i of x moved to bit 31 - i.
constexpr std::uint32_t reverse_bits(std::uint32_t x) noexcept {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i, x >>= 1) r = (r << 1) | (x & 1u);
  return r;
}

std::uint32_t extend_portable(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  // crc_optimal takes its initial remainder unreflected (as for a non-reflected CRC) and
  // reflects it itself, so the register value we continue from (the complement of the CRC so
  // far, which is in reflected form) is handed over bit-reversed. Checked by the split tests.
  BoostCrc32c c(reverse_bits(crc ^ kXor));
  c.process_bytes(data, n);
  return c.checksum();
}

#ifdef CONVEYOR_CRC32C_X86
__attribute__((target("sse4.2"))) std::uint32_t extend_sse42(std::uint32_t crc, const void* data,
                                                             std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t l = crc ^ kXor;
  // Head: single bytes up to an 8-byte boundary.
  while (n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7) != 0) {
    l = _mm_crc32_u8(l, *p++);
    --n;
  }
#if defined(__x86_64__)
  std::uint64_t l64 = l;
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    l64 = _mm_crc32_u64(l64, word);
    p += 8;
    n -= 8;
  }
  l = static_cast<std::uint32_t>(l64);
#endif
  while (n >= 4) {
    std::uint32_t word;
    std::memcpy(&word, p, 4);
    l = _mm_crc32_u32(l, word);
    p += 4;
    n -= 4;
  }
  while (n > 0) {
    l = _mm_crc32_u8(l, *p++);
    --n;
  }
  return l ^ kXor;
}

bool cpu_has_sse42() noexcept {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return has;
}
#endif

}  // namespace

bool available(Implementation impl) noexcept {
  switch (impl) {
    case Implementation::kPortable: return true;
    case Implementation::kHardware:
#ifdef CONVEYOR_CRC32C_X86
      return cpu_has_sse42();
#else
      return false;
#endif
  }
  return false;
}

Implementation best() noexcept {
  return available(Implementation::kHardware) ? Implementation::kHardware
                                              : Implementation::kPortable;
}

std::uint32_t extend(Implementation impl, std::uint32_t crc, const void* data,
                     std::size_t n) noexcept {
#ifdef CONVEYOR_CRC32C_X86
  if (impl == Implementation::kHardware) return extend_sse42(crc, data, n);
#else
  (void)impl;
#endif
  return extend_portable(crc, data, n);
}

std::uint32_t extend(std::uint32_t crc, const void* data, std::size_t n) noexcept {
#ifdef CONVEYOR_CRC32C_X86
  if (cpu_has_sse42()) return extend_sse42(crc, data, n);
#endif
  return extend_portable(crc, data, n);
}

}  // namespace conveyor::crc32c
