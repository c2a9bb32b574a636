#include "engine/status.h"

#include <exception>

namespace conveyor {

std::string_view to_string(Status s) noexcept {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kFull: return "full";
    case Status::kEmpty: return "empty";
    case Status::kClosed: return "closed";
    case Status::kCancelled: return "cancelled";
    case Status::kTimedOut: return "timed_out";
  }
  return "unknown";
}

std::string_view to_string(ErrorKind k) noexcept {
  switch (k) {
    case ErrorKind::kCancelled: return "Cancelled";
    case ErrorKind::kInvalidArgument: return "InvalidArgument";
    case ErrorKind::kDeadlineExceeded: return "DeadlineExceeded";
    case ErrorKind::kOutOfRange: return "OutOfRange";
    case ErrorKind::kFailedPrecondition: return "FailedPrecondition";
    case ErrorKind::kInternal: return "Internal";
    case ErrorKind::kDataLoss: return "DataLoss";
    case ErrorKind::kUnknown: return "Unknown";
    case ErrorKind::kUnavailable: return "Unavailable";
  }
  return "Unknown";
}

Error::Error(ErrorKind kind, const std::string& message)
    : std::runtime_error(std::string(to_string(kind)) + ": " + message),
      kind_(kind),
      message_(message) {}

Error invalid_argument(std::string_view argument, long long value, std::string_view requirement) {
  return invalid_argument(argument, std::to_string(value), requirement);
}

Error invalid_argument(std::string_view argument, std::string_view value,
                       std::string_view requirement) {
  std::string m(argument);
  m += " = ";
  m += value;
  m += ": ";
  m += requirement;
  return Error(ErrorKind::kInvalidArgument, m);
}

ErrorKind kind_of(const std::exception_ptr& e) noexcept {
  if (!e) return ErrorKind::kUnknown;
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    return err.kind();
  } catch (...) {
    return ErrorKind::kUnknown;
  }
}

}  // namespace conveyor
