// TF-facing errors for queue statuses (SPEC.md A18, A19, A22, A23, A26).
//
// Hot paths return a Status; a caller that wants TensorFlow's error kinds and messages (the
// tensor layer, runners, a TF user porting code) turns a failed Status into a conveyor::Error:
//   if (s != Status::kOk) throw queue_error(s, QueueOp::kDequeue, q.name(), n, q.size_approx());
#pragma once

#include <cstddef>
#include <string_view>

#include "engine/status.h"

namespace conveyor {

enum class QueueOp : std::uint8_t { kEnqueue, kDequeue, kClose };

// `kind` is the queue class name TF prints ("FIFOQueue", "RandomShuffleQueue", ...).
// `requested` / `current` fill the OutOfRange message of a dequeue.
Error queue_error(Status status, QueueOp op, std::string_view name, std::size_t requested = 1,
                  std::size_t current = 0, std::string_view kind = "FIFOQueue");

}  // namespace conveyor
