// QueueRunnerDef: a queue runner described by names, and its protobuf wire form (SPEC.md D8).
//
// Contract:
//  - A plain value: the queue's name, the enqueue ops' names, the close and cancel ops' names and
//    the error kinds that mean "the queue was closed". Ops are resolved by name in a Session's
//    op registry when the runner's threads are created (engine/session.h).
//  - to_wire() writes TensorFlow's QueueRunnerDef wire format (tensorflow/core/protobuf/
//    queue_runner.proto: fields 1..4 strings, 5 repeated tensorflow.error.Code), so TensorFlow's
//    QueueRunnerDef.ParseFromString reads it; from_wire() reads what TensorFlow's
//    SerializeToString wrote (packed or unpacked field 5, unknown fields skipped).
//  - Error kinds map to TensorFlow's codes by name (kCancelled = CANCELLED = 1, kOutOfRange =
//    OUT_OF_RANGE = 11, ...). A code with no Conveyor kind (NOT_FOUND, ABORTED, ...) or bytes
//    that are not a QueueRunnerDef -> InvalidArgument naming it. An empty field 5 reads as
//    {kOutOfRange}, as in TensorFlow.
// The schema is engine/proto/queue_runner.proto; protobuf stays out of this header.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace conveyor {

struct QueueRunnerDef {
  std::string queue_name;
  std::vector<std::string> enqueue_op_names;
  std::string close_op_name;
  std::string cancel_op_name;
  std::vector<ErrorKind> queue_closed_error_kinds;

  friend bool operator==(const QueueRunnerDef&, const QueueRunnerDef&) = default;

  // Serialized protobuf message (binary wire format).
  std::string to_wire() const;
  static QueueRunnerDef from_wire(std::string_view bytes);
};

// TensorFlow's error.Code number of a kind, and back. from_tf_code throws InvalidArgument for a
// code Conveyor has no kind for.
int to_tf_code(ErrorKind kind) noexcept;
ErrorKind from_tf_code(int code);

}  // namespace conveyor
