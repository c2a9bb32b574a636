// alloc/'s two exception types: one for a resource that cannot be set up or a malformed request,
// one for memory that could not be obtained.
//
// Contract:
//  - `Error` (a std::runtime_error) is thrown by constructors and for bad arguments: a NUMA node
//    index out of range, a node this process may not bind to, an alignment that is not a power
//    of two, a topology hwloc cannot load. Retrying the same call cannot succeed.
//  - `AllocationError` (a std::bad_alloc) is thrown by allocate() when a well-formed request
//    cannot be met: the OS has no memory for it, or refused to bind it to the node. It is a
//    bad_alloc because that is what std::pmr containers and their users catch for "no memory";
//    what() still says which node and how many bytes (std::bad_alloc's own what() says neither).
//  - Both carry an `ErrorKind`, and what() reads
//      "<operation>: node = N, bytes = B, alignment = A: <kind>: <detail>"
//    with the parts that apply, e.g. "allocate: node = 3, bytes = 4194304, alignment = 16:
//    out of memory: mmap failed: Cannot allocate memory" (STYLE.md, "Errors": name the argument
//    and the value).
//  - Copying either never throws (the message is held in a reference-counted std::runtime_error,
//    as the standard exceptions do).
// alloc/ includes nothing else of Conveyor, hence its own error types (as topology/ has).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

namespace conveyor::alloc {

enum class ErrorKind : std::uint8_t {
  kInvalidArgument,      // Error: bad node index, alignment not a power of two, null topology
  kTopologyUnavailable,  // Error: hwloc could not initialise or load this machine's topology
  kBindUnsupported,      // Error: this process cannot bind memory to the node (checked up front)
  kBindFailed,           // AllocationError: the OS refused to bind one allocation to the node
  kOutOfMemory,          // AllocationError: no address space or memory for the request
};

// "invalid argument", "topology unavailable", "binding unsupported", "binding failed",
// "out of memory": the words what() uses.
std::string_view to_string(ErrorKind kind) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

class AllocationError : public std::bad_alloc {
 public:
  AllocationError(ErrorKind kind, std::size_t bytes, const std::string& message)
      : kind_(kind), bytes_(bytes), message_(message) {}
  const char* what() const noexcept override { return message_.what(); }
  ErrorKind kind() const noexcept { return kind_; }
  // The size the caller asked for.
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  ErrorKind kind_;
  std::size_t bytes_;
  std::runtime_error message_;  // nothrow-copyable storage for what()
};

}  // namespace conveyor::alloc
