#include "alloc/aligned_resource.h"

#include <cerrno>
#include <new>
#include <optional>

#include "alloc/cache_padded.h"
#include "alloc/error.h"
#include "alloc/internal/pages.h"

namespace conveyor::alloc {
namespace {

using internal::describe;

class AlignedResource final : public std::pmr::memory_resource {
 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (!internal::is_power_of_two(alignment)) {
      throw Error(ErrorKind::kInvalidArgument,
                  describe("allocate", {}, bytes, alignment, ErrorKind::kInvalidArgument,
                           "alignment must be a power of two"));
    }
    auto fail = [&](const std::string& detail) {
      return AllocationError(ErrorKind::kOutOfMemory, bytes,
                             describe("allocate", {}, bytes, alignment, ErrorKind::kOutOfMemory,
                                      detail));
    };
    if (bytes < internal::kHugePageBytes) {
      void* p = ::operator new(bytes, std::align_val_t{padded(alignment)}, std::nothrow);
      if (p == nullptr) throw fail("aligned operator new failed");
      return p;
    }
    const std::optional<internal::Layout> layout = internal::layout_for(bytes, alignment);
    if (!layout) throw fail("size exceeds the address space");
    void* p = internal::map_pages(*layout);
    if (p == nullptr) {
      const int err = errno;
      throw fail(internal::failed("mmap", err));
    }
    internal::touch_pages(p, layout->length);
    return p;
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (bytes < internal::kHugePageBytes) {
      ::operator delete(p, std::align_val_t{padded(alignment)});
      return;
    }
    // Same (bytes, alignment) as allocate() (the pmr contract): the same mapping length.
    if (const std::optional<internal::Layout> layout = internal::layout_for(bytes, alignment)) {
      internal::unmap_pages(p, layout->length);
    }
  }

  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  static std::size_t padded(std::size_t alignment) noexcept {
    return alignment < kCachePairBytes ? kCachePairBytes : alignment;
  }
};

}  // namespace

std::pmr::memory_resource* aligned_resource() noexcept {
  // Constructed on first use and never destroyed, so that containers in static storage may
  // still release their memory during static destruction.
  alignas(AlignedResource) static unsigned char storage[sizeof(AlignedResource)];
  static AlignedResource* const instance = ::new (static_cast<void*>(storage)) AlignedResource();
  return instance;
}

}  // namespace conveyor::alloc
