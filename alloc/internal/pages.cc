#include "alloc/internal/pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <limits>

namespace conveyor::alloc::internal {
namespace {

constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();

// n rounded up to a multiple of `to` (a power of two); the caller has checked for overflow.
constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) & ~(to - 1);
}

}  // namespace

std::size_t page_bytes() noexcept {
  static const std::size_t page = [] {
    const long n = ::sysconf(_SC_PAGESIZE);
    return n > 0 ? static_cast<std::size_t>(n) : std::size_t{4096};
  }();
  return page;
}

std::optional<Layout> layout_for(std::size_t bytes, std::size_t alignment) noexcept {
  const std::size_t page = page_bytes();
  const bool huge = bytes >= kHugePageBytes;
  std::size_t align = alignment > page ? alignment : page;
  if (huge && align < kHugePageBytes) align = kHugePageBytes;
  const std::size_t wanted = bytes == 0 ? 1 : bytes;
  if (wanted > kMax - (page - 1)) return std::nullopt;
  const std::size_t length = round_up(wanted, page);
  if (length > kMax - (align - page)) return std::nullopt;  // map_pages maps the slack too
  return Layout{length, align, huge};
}

void* map_pages(const Layout& layout) noexcept {
  const std::size_t slack = layout.alignment - page_bytes();
  void* base = ::mmap(nullptr, layout.length + slack, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(base);
  const std::uintptr_t aligned = round_up(start, layout.alignment);
  const std::size_t head = aligned - start;
  const std::size_t tail = slack - head;
  // Trimming a fresh private mapping cannot fail (the ranges are page aligned and ours).
  if (head != 0) ::munmap(base, head);
  if (tail != 0) ::munmap(reinterpret_cast<void*>(aligned + layout.length), tail);
  void* p = reinterpret_cast<void*>(aligned);
  // A hint (see the header): refused only by kernels without THP, and then base pages serve.
  if (layout.huge) ::madvise(p, layout.length, MADV_HUGEPAGE);
  return p;
}

void unmap_pages(void* p, std::size_t length) noexcept { ::munmap(p, length); }

void touch_pages(void* p, std::size_t length) noexcept {
  auto* bytes = static_cast<volatile unsigned char*>(p);
  const std::size_t page = page_bytes();
  for (std::size_t offset = 0; offset < length; offset += page) bytes[offset] = 0;
}

std::string describe(std::string_view operation, std::optional<unsigned> node,
                     std::optional<std::size_t> bytes, std::optional<std::size_t> alignment,
                     ErrorKind kind, std::string_view detail) {
  std::string out(operation);
  const char* sep = ": ";
  auto field = [&](const char* name, std::size_t value) {
    out += sep;
    out += name;
    out += " = ";
    out += std::to_string(value);
    sep = ", ";
  };
  if (node) field("node", *node);
  if (bytes) field("bytes", *bytes);
  if (alignment) field("alignment", *alignment);
  out += ": ";
  out += to_string(kind);
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

std::string failed(std::string_view call, int err) {
  std::string out(call);
  out += " failed: ";
  out += std::strerror(err);
  return out;
}

}  // namespace conveyor::alloc::internal
