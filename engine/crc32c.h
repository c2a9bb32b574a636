// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected, init and final xor 0xFFFFFFFF): the
// checksum of TensorFlow's TFRecord format, iSCSI (RFC 3720) and LevelDB.
//
// Contract:
//  - Pure functions, safe from any thread. value(d) == extend(0, d), and
//    extend(value(a), b) == value(a + b): a checksum can be built piece by piece.
//  - Two implementations give the same results: kHardware (the SSE4.2 `crc32` instruction,
//    8 bytes per step) and kPortable (Boost.CRC's table-driven crc_optimal). extend() uses
//    kHardware when the CPU has SSE4.2 (checked once, on first use), kPortable otherwise.
//  - mask()/unmask(): TFRecord stores masked CRCs, because a CRC of data that itself holds CRCs
//    is weak (tensorflow/core/lib/hash/crc32c.h). unmask(mask(c)) == c.
//
// Algorithm (kHardware): crc32 on single bytes until the pointer is 8-byte aligned, then on
// 8-byte words read with memcpy (no aliasing or alignment assumptions), then the tail bytes.
// One dependency chain: about 8 bytes per 3 cycles, plenty for reading files.
//
// References: RFC 3720 section 12.1 and appendix B.4 (test vectors); Intel SSE4.2 CRC32;
// TensorFlow tensorflow/tsl/lib/hash/crc32c.h (Mask/Unmask).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace conveyor::crc32c {

enum class Implementation : std::uint8_t {
  kHardware,  // SSE4.2 crc32 instruction; only where available() says so
  kPortable,  // Boost.CRC, any CPU
};

// The implementation extend() uses on this CPU.
Implementation best() noexcept;
// Whether `impl` can run on this CPU (kPortable always can).
bool available(Implementation impl) noexcept;

// The CRC32C of (the data whose CRC32C is `crc`) followed by data[0, n).
std::uint32_t extend(std::uint32_t crc, const void* data, std::size_t n) noexcept;
inline std::uint32_t extend(std::uint32_t crc, std::string_view data) noexcept {
  return extend(crc, data.data(), data.size());
}
// extend() with a chosen implementation; `impl` must be available() (tests, benchmarks).
std::uint32_t extend(Implementation impl, std::uint32_t crc, const void* data,
                     std::size_t n) noexcept;

// The CRC32C of data[0, n).
inline std::uint32_t value(const void* data, std::size_t n) noexcept {
  return extend(0, data, n);
}
inline std::uint32_t value(std::string_view data) noexcept { return value(data.data(), data.size()); }

// TFRecord's masked form of a CRC: rotate right by 15 and add a constant.
inline constexpr std::uint32_t kMaskDelta = 0xa282ead8u;
constexpr std::uint32_t mask(std::uint32_t crc) noexcept {
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}
constexpr std::uint32_t unmask(std::uint32_t masked) noexcept {
  const std::uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace conveyor::crc32c
