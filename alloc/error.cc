#include "alloc/error.h"

namespace conveyor::alloc {

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
    case ErrorKind::kTopologyUnavailable:
      return "topology unavailable";
    case ErrorKind::kBindUnsupported:
      return "binding unsupported";
    case ErrorKind::kBindFailed:
      return "binding failed";
    case ErrorKind::kOutOfMemory:
      return "out of memory";
  }
  return "unknown error";
}

}  // namespace conveyor::alloc
