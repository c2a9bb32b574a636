#include "engine/internal/owner.h"

namespace conveyor::internal {
namespace {

constinit thread_local const std::atomic<bool>* t_owner = nullptr;

}  // namespace

bool owner_cancelled() noexcept {
  // acquire: pairs with the owner's store; what it did before tearing down is visible.
  return t_owner != nullptr && t_owner->load(std::memory_order_acquire);
}

OwnerScope::OwnerScope(const std::atomic<bool>* flag) noexcept : previous_(t_owner) {
  t_owner = flag;
}

OwnerScope::~OwnerScope() { t_owner = previous_; }

}  // namespace conveyor::internal
