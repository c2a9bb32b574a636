// Status and error kinds shared by every Conveyor primitive.
//
// Two ways a result reaches a caller, chosen by the layer:
//  - Hot paths (ring operations) are noexcept and return a [[nodiscard]] `Status`.
//  - The TF-facing layer (coordinator, runners, tensor queues) throws `conveyor::Error`, which
//    carries one of TensorFlow's error kinds (SPEC.md: OutOfRange, Cancelled, InvalidArgument,
//    DeadlineExceeded, FailedPrecondition; DataLoss from the record readers) and a message with
//    TF's content, so a TF user recognises it. `to_error()` maps a Status to that form.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace conveyor {

// Result of a queue operation. A failed push leaves the value with the caller.
enum class Status : std::uint8_t {
  kOk,         // done
  kFull,       // try_ enqueue: no free slot (or blocked waiters ahead of us)
  kEmpty,      // try_ dequeue: nothing to take (or blocked waiters ahead of us)
  kClosed,     // enqueue on a closed queue; dequeue on a closed queue with too few elements
  kCancelled,  // a blocked enqueue failed by close(cancel), or a wait cancelled by its owner
  kTimedOut,   // the Deadline passed while blocked
};

std::string_view to_string(Status s) noexcept;

// TensorFlow's error kinds, by the same names (SPEC.md, "TensorFlow error kinds map ...").
enum class ErrorKind : std::uint8_t {
  kCancelled,
  kInvalidArgument,
  kDeadlineExceeded,
  kOutOfRange,
  kFailedPrecondition,
  kInternal,
  kDataLoss,  // unrecoverable corruption or truncation of stored data (record readers)
  kUnknown,  // an exception that is not a conveyor::Error (user code run by a runner)
  kUnavailable,  // TF's UNAVAILABLE: a server that cannot be reached, or was lost for too long
};

std::string_view to_string(ErrorKind k) noexcept;

// The exception the TF-facing layer throws. what() is "<Kind>: <message>".
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message);
  ErrorKind kind() const noexcept { return kind_; }
  // The message without the "<Kind>: " prefix (what TF puts in the status message).
  const std::string& message() const noexcept { return message_; }

 private:
  ErrorKind kind_;
  std::string message_;
};

// Shorthand for the argument checks every public entry point makes:
//   throw invalid_argument("capacity", capacity, "must be >= 1");
// -> InvalidArgument "capacity = 0: must be >= 1".
Error invalid_argument(std::string_view argument, long long value, std::string_view requirement);
Error invalid_argument(std::string_view argument, std::string_view value,
                       std::string_view requirement);

// The kind of any exception (kUnknown for non-conveyor exceptions, or a null pointer).
ErrorKind kind_of(const std::exception_ptr& e) noexcept;

}  // namespace conveyor
