#include "engine/queue_runner_def.h"

#include "engine/proto/queue_runner.pb.h"

namespace conveyor {

int to_tf_code(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::kCancelled: return wire::CANCELLED;
    case ErrorKind::kInvalidArgument: return wire::INVALID_ARGUMENT;
    case ErrorKind::kDeadlineExceeded: return wire::DEADLINE_EXCEEDED;
    case ErrorKind::kOutOfRange: return wire::OUT_OF_RANGE;
    case ErrorKind::kFailedPrecondition: return wire::FAILED_PRECONDITION;
    case ErrorKind::kInternal: return wire::INTERNAL;
    case ErrorKind::kDataLoss: return wire::DATA_LOSS;
    case ErrorKind::kUnknown: return wire::UNKNOWN;
    case ErrorKind::kUnavailable: return wire::UNAVAILABLE;
  }
  return wire::UNKNOWN;
}

ErrorKind from_tf_code(int code) {
  switch (code) {
    case wire::CANCELLED: return ErrorKind::kCancelled;
    case wire::INVALID_ARGUMENT: return ErrorKind::kInvalidArgument;
    case wire::DEADLINE_EXCEEDED: return ErrorKind::kDeadlineExceeded;
    case wire::OUT_OF_RANGE: return ErrorKind::kOutOfRange;
    case wire::FAILED_PRECONDITION: return ErrorKind::kFailedPrecondition;
    case wire::INTERNAL: return ErrorKind::kInternal;
    case wire::DATA_LOSS: return ErrorKind::kDataLoss;
    case wire::UNKNOWN: return ErrorKind::kUnknown;
    case wire::UNAVAILABLE: return ErrorKind::kUnavailable;
    default: break;
  }
  const std::string name =
      wire::Code_IsValid(code) ? wire::Code_Name(static_cast<wire::Code>(code)) : "not a Code";
  throw invalid_argument("queue_closed_exception_types", code,
                         "error code " + name + " has no Conveyor error kind");
}

std::string QueueRunnerDef::to_wire() const {
  wire::QueueRunnerDef m;
  m.set_queue_name(queue_name);
  for (const std::string& op : enqueue_op_names) m.add_enqueue_op_name(op);
  m.set_close_op_name(close_op_name);
  m.set_cancel_op_name(cancel_op_name);
  for (ErrorKind k : queue_closed_error_kinds) {
    m.add_queue_closed_exception_types(static_cast<wire::Code>(to_tf_code(k)));
  }
  return m.SerializeAsString();
}

QueueRunnerDef QueueRunnerDef::from_wire(std::string_view bytes) {
  wire::QueueRunnerDef m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw invalid_argument("queue_runner_def", static_cast<long long>(bytes.size()),
                           "bytes are not a serialized QueueRunnerDef");
  }
  QueueRunnerDef def;
  def.queue_name = m.queue_name();
  def.enqueue_op_names.assign(m.enqueue_op_name().begin(), m.enqueue_op_name().end());
  def.close_op_name = m.close_op_name();
  def.cancel_op_name = m.cancel_op_name();
  for (int code : m.queue_closed_exception_types()) {
    def.queue_closed_error_kinds.push_back(from_tf_code(code));
  }
  if (def.queue_closed_error_kinds.empty()) {
    def.queue_closed_error_kinds.push_back(ErrorKind::kOutOfRange);  // TF's legacy rule (D8)
  }
  return def;
}

}  // namespace conveyor
