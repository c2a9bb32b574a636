// Page-level mechanics shared by NumaResource and aligned_resource(): how a request becomes an
// anonymous mapping (length, alignment, transparent huge pages), pre-faulting, and the message
// format of alloc/'s errors. Not part of the API.
//
// A request of `bytes` with `alignment` becomes a private anonymous mapping:
//   length    = bytes rounded up to whole pages (one page for 0 bytes);
//   alignment = at least a page; at least kHugePageBytes when bytes >= kHugePageBytes, so the
//               kernel can back every whole 2 MiB stretch with one huge page;
//   advice    = MADV_HUGEPAGE when bytes >= kHugePageBytes (a hint: if the kernel has no THP,
//               or THP is "never", the mapping keeps base pages and nothing fails).
// The tail is not rounded up to 2 MiB: the last partial stretch stays on base pages rather than
// committing up to 2 MiB that nobody asked for (every page is pre-faulted, so that would be real
// memory). An alignment above the page size is met by mapping `alignment - page` extra bytes
// and unmapping the slack before and after, so the mapping is exactly [p, p + length) and is
// released by one munmap of `length`, recomputed from the same (bytes, alignment).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "alloc/error.h"

namespace conveyor::alloc::internal {

// The x86-64 PMD size: what a transparent huge page covers. (arm64 with 64 KiB base pages uses
// 512 MiB; Conveyor targets x86-64, see kCachePairBytes.)
inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

constexpr bool is_power_of_two(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

// sysconf(_SC_PAGESIZE), read once.
std::size_t page_bytes() noexcept;

struct Layout {
  std::size_t length;     // bytes mapped, a whole number of pages
  std::size_t alignment;  // where the mapping starts; a power of two >= page_bytes()
  bool huge;              // bytes >= kHugePageBytes: 2 MiB aligned and MADV_HUGEPAGE
};

// The mapping for (bytes, alignment); `alignment` must be a power of two. nullopt when the
// length, or the length plus the alignment slack, does not fit in std::size_t.
std::optional<Layout> layout_for(std::size_t bytes, std::size_t alignment) noexcept;

// Maps `layout` (read-write, private, anonymous) and gives huge-page advice if layout.huge.
// Nothing is faulted in yet. nullptr with errno set when mmap fails.
void* map_pages(const Layout& layout) noexcept;

// Releases a mapping of `length` bytes made by map_pages().
void unmap_pages(void* p, std::size_t length) noexcept;

// Writes one byte of every page so that each is faulted in now, by the calling thread, instead
// of on first use on a hot path. The mapping is fresh (all zeros); zeros are written.
void touch_pages(void* p, std::size_t length) noexcept;

// what() of alloc/'s errors: "<operation>: node = N, bytes = B, alignment = A: <kind>: <detail>",
// each of node, bytes, alignment only when given.
std::string describe(std::string_view operation, std::optional<unsigned> node,
                     std::optional<std::size_t> bytes, std::optional<std::size_t> alignment,
                     ErrorKind kind, std::string_view detail);

// "<call> failed: <strerror(err)>".
std::string failed(std::string_view call, int err);

}  // namespace conveyor::alloc::internal
